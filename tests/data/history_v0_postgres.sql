-- The history schema as bot/history/db.py at 1cfe20d (create_all, no alembic_version) made it on PostgreSQL;
-- captured from the CREATE statements it ran. Rows: the SQLite fixture's, copied by the test.
CREATE TABLE users (
	id SERIAL NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE sessions (
	id VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	mode VARCHAR(40) NOT NULL, 
	config JSON NOT NULL, 
	card_ids JSON NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_sessions_user_id ON sessions (user_id);

CREATE INDEX ix_sessions_started_at ON sessions (started_at);

CREATE TABLE card_states (
	user_id INTEGER NOT NULL, 
	card_id VARCHAR(64) NOT NULL, 
	state INTEGER NOT NULL, 
	step INTEGER, 
	stability FLOAT, 
	difficulty FLOAT, 
	due TIMESTAMP WITH TIME ZONE NOT NULL, 
	last_review TIMESTAMP WITH TIME ZONE, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (user_id, card_id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_card_states_due ON card_states (due);

CREATE TABLE attempts (
	id SERIAL NOT NULL, 
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
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	answered_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	FOREIGN KEY(session_id) REFERENCES sessions (id)
);

CREATE INDEX ix_attempts_session_id ON attempts (session_id);

CREATE INDEX ix_attempts_user_id ON attempts (user_id);

CREATE INDEX ix_attempts_card_id ON attempts (card_id);

CREATE INDEX ix_attempts_answered_at ON attempts (answered_at);

CREATE TABLE outcomes (
	id SERIAL NOT NULL, 
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
	finished_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	state_before JSON, 
	state_after JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_outcome_session_card UNIQUE (session_id, card_id), 
	FOREIGN KEY(user_id) REFERENCES users (id), 
	FOREIGN KEY(session_id) REFERENCES sessions (id)
);

CREATE INDEX ix_outcomes_user_id ON outcomes (user_id);

CREATE INDEX ix_outcomes_session_id ON outcomes (session_id);

CREATE INDEX ix_outcomes_card_id ON outcomes (card_id);

