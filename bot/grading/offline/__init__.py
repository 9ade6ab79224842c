"""The offline grader: features and fitted parameters, no network."""
