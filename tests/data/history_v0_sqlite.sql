-- A history database as bot/history/db.py at 1cfe20d (create_all, no alembic_version) made it on SQLite:
-- two users, three sessions, attempts, outcomes and FSRS card states; dumped with sqlite3 iterdump.
BEGIN TRANSACTION;
CREATE TABLE attempts (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	session_id VARCHAR(64) NOT NULL, 
	card_id VARCHAR(64) NOT NULL, 
	topic VARCHAR(200) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	prompt TEXT NOT NULL, 
	answer TEXT NOT NULL, 
	grade JSON, 
	status VARCHAR(10) NOT NULL, 
	score FLOAT, 
	hints_used INTEGER NOT NULL, 
	time_taken_s FLOAT NOT NULL, 
	started_at DATETIME NOT NULL, 
	answered_at DATETIME NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	FOREIGN KEY(session_id) REFERENCES sessions (id)
);
INSERT INTO "attempts" VALUES(1,1,'s-alice-1','c1','Deep learning','answer','Question for c1?','Dropout switches random neurons off during training.','{"status": "graded", "score": 8.0, "band": "good", "claims": [{"point": "point 0", "status": "hit", "evidence": "said 0"}, {"point": "point 1", "status": "hit", "evidence": "said 1"}, {"point": "missed 0", "status": "missed", "evidence": ""}], "criteria": {"correctness": 2, "depth": 1}, "misconceptions": [], "feedback": "Good start; name the trade-off.", "model_answer": "", "reference_issue": "", "graded_without_reference": false, "usage": {"prompt_tokens": 900, "completion_tokens": 120, "cost_usd": 0.0002}, "grader": "offline", "prompt_version": "v-test", "fallback_reason": "", "ungraded_reason": "", "notes": []}','graded',8.0,0,42.0,'2026-03-02 08:59:18.000000','2026-03-02 09:00:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "attempts" VALUES(2,1,'s-alice-1','c2','Deep learning','answer','Question for c2?','Dropout switches random neurons off during training.','{"status": "ungraded", "score": null, "band": null, "claims": [], "criteria": null, "misconceptions": [], "feedback": "", "model_answer": "", "reference_issue": "", "graded_without_reference": false, "usage": null, "grader": "llm:test", "prompt_version": "", "fallback_reason": "", "ungraded_reason": "the model timed out", "notes": []}','ungraded',NULL,0,42.0,'2026-03-02 09:02:18.000000','2026-03-02 09:03:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "attempts" VALUES(3,1,'s-alice-1','c2','Deep learning','follow_up','Question for c2?','Dropout switches random neurons off during training.','{"status": "graded", "score": 3.0, "band": "weak", "claims": [{"point": "point 0", "status": "hit", "evidence": "said 0"}, {"point": "point 1", "status": "hit", "evidence": "said 1"}, {"point": "missed 0", "status": "missed", "evidence": ""}], "criteria": {"correctness": 2, "depth": 1}, "misconceptions": [], "feedback": "Good start; name the trade-off.", "model_answer": "", "reference_issue": "", "graded_without_reference": false, "usage": {"prompt_tokens": 900, "completion_tokens": 120, "cost_usd": 0.0002}, "grader": "offline", "prompt_version": "v-test", "fallback_reason": "", "ungraded_reason": "", "notes": []}','graded',3.0,0,42.0,'2026-03-02 09:03:18.000000','2026-03-02 09:04:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "attempts" VALUES(4,1,'s-alice-2','c2','Deep learning','answer','Question for c2?','Dropout switches random neurons off during training.','{"status": "graded", "score": 6.5, "band": "good", "claims": [{"point": "point 0", "status": "hit", "evidence": "said 0"}, {"point": "point 1", "status": "hit", "evidence": "said 1"}, {"point": "missed 0", "status": "missed", "evidence": ""}], "criteria": {"correctness": 2, "depth": 1}, "misconceptions": [], "feedback": "Good start; name the trade-off.", "model_answer": "", "reference_issue": "", "graded_without_reference": false, "usage": {"prompt_tokens": 900, "completion_tokens": 120, "cost_usd": 0.0002}, "grader": "offline", "prompt_version": "v-test", "fallback_reason": "", "ungraded_reason": "", "notes": []}','graded',6.5,0,42.0,'2026-03-03 09:00:18.000000','2026-03-03 09:01:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "attempts" VALUES(5,2,'s-bob-1','c9','Deep learning','skip','Question for c9?','','null','none',NULL,0,42.0,'2026-03-04 09:00:18.000000','2026-03-04 09:01:00.000000','2026-01-01 00:00:00.000000');
CREATE TABLE card_states (
	user_id INTEGER NOT NULL, 
	card_id VARCHAR(64) NOT NULL, 
	state INTEGER NOT NULL, 
	step INTEGER, 
	stability FLOAT, 
	difficulty FLOAT, 
	due DATETIME NOT NULL, 
	last_review DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (user_id, card_id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
INSERT INTO "card_states" VALUES(1,'c1',1,1,2.3065,2.11810397045901588342e+00,'2026-03-02 09:10:00.000000','2026-03-02 09:00:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "card_states" VALUES(1,'c2',1,0,0.212,6.4133,'2026-03-02 09:06:00.000000','2026-03-02 09:05:00.000000','2026-01-01 00:00:00.000000');
INSERT INTO "card_states" VALUES(2,'c9',1,0,0.212,6.4133,'2026-03-04 09:02:00.000000','2026-03-04 09:01:00.000000','2026-01-01 00:00:00.000000');
CREATE TABLE outcomes (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	session_id VARCHAR(64) NOT NULL, 
	card_id VARCHAR(64) NOT NULL, 
	topic VARCHAR(200) NOT NULL, 
	final_score FLOAT, 
	skipped BOOLEAN NOT NULL, 
	revealed BOOLEAN NOT NULL, 
	hints_used INTEGER NOT NULL, 
	rating INTEGER, 
	auto_rating INTEGER, 
	overridden BOOLEAN NOT NULL, 
	finished_at DATETIME NOT NULL, 
	state_before JSON, 
	state_after JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_outcome_session_card UNIQUE (session_id, card_id), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	FOREIGN KEY(session_id) REFERENCES sessions (id)
);
INSERT INTO "outcomes" VALUES(1,1,'s-alice-1','c1','Deep learning',8.0,0,0,0,3,3,0,'2026-03-02 09:00:00.000000','null','{"card_id": 51825061201043, "state": 1, "step": 1, "stability": 2.3065, "difficulty": 2.118103970459016, "due": "2026-03-02T09:10:00+00:00", "last_review": "2026-03-02T09:00:00+00:00"}');
INSERT INTO "outcomes" VALUES(2,1,'s-alice-1','c2','Deep learning',3.0,0,0,0,1,1,0,'2026-03-02 09:05:00.000000','null','{"card_id": 117782283827827, "state": 1, "step": 0, "stability": 0.212, "difficulty": 6.4133, "due": "2026-03-02T09:06:00+00:00", "last_review": "2026-03-02T09:05:00+00:00"}');
INSERT INTO "outcomes" VALUES(3,2,'s-bob-1','c9','Deep learning',NULL,1,0,0,1,1,0,'2026-03-04 09:01:00.000000','null','{"card_id": 115373373904559, "state": 1, "step": 0, "stability": 0.212, "difficulty": 6.4133, "due": "2026-03-04T09:02:00+00:00", "last_review": "2026-03-04T09:01:00+00:00"}');
CREATE TABLE sessions (
	id VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	mode VARCHAR(40) NOT NULL, 
	config JSON NOT NULL, 
	card_ids JSON NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
INSERT INTO "sessions" VALUES('s-alice-1',1,'practice','{"topics": ["Deep learning"]}','["c1", "c2", "c3"]','2026-03-02 09:00:00.000000','2026-03-02 09:10:00.000000');
INSERT INTO "sessions" VALUES('s-alice-2',1,'interview','{"n": 2}','["c2", "c4"]','2026-03-03 09:00:00.000000',NULL);
INSERT INTO "sessions" VALUES('s-bob-1',2,'practice','{}','["c9"]','2026-03-04 09:00:00.000000',NULL);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "users" VALUES(1,'alice','2026-01-01 00:00:00.000000');
INSERT INTO "users" VALUES(2,'bob','2026-01-01 00:00:00.000000');
CREATE INDEX ix_sessions_user_id ON sessions (user_id);
CREATE INDEX ix_sessions_started_at ON sessions (started_at);
CREATE INDEX ix_card_states_due ON card_states (due);
CREATE INDEX ix_attempts_card_id ON attempts (card_id);
CREATE INDEX ix_attempts_answered_at ON attempts (answered_at);
CREATE INDEX ix_attempts_user_id ON attempts (user_id);
CREATE INDEX ix_attempts_session_id ON attempts (session_id);
CREATE INDEX ix_outcomes_user_id ON outcomes (user_id);
CREATE INDEX ix_outcomes_session_id ON outcomes (session_id);
CREATE INDEX ix_outcomes_card_id ON outcomes (card_id);
COMMIT;
