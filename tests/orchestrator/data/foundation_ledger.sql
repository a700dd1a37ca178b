CREATE TABLE batches (
	id VARCHAR(32) NOT NULL, 
	workflow VARCHAR(64) NOT NULL, 
	digest VARCHAR(32) NOT NULL, 
	source_name TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "batches" VALUES('b8f11fec41ac','change-of-address','abc','cases.csv',1795378749.57099);
CREATE TABLE transaction_events (
	id INTEGER NOT NULL, 
	transaction_id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	state VARCHAR(24) NOT NULL, 
	attempt INTEGER NOT NULL, 
	detail TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE transactions (
	id INTEGER NOT NULL, 
	workflow VARCHAR(64) NOT NULL, 
	digest VARCHAR(32) NOT NULL, 
	batch_id VARCHAR(32) NOT NULL, 
	case_ref VARCHAR(128) NOT NULL, 
	payload TEXT NOT NULL, 
	state VARCHAR(24) NOT NULL, 
	attempts INTEGER NOT NULL, 
	max_attempts INTEGER NOT NULL, 
	fence INTEGER NOT NULL, 
	lease_owner VARCHAR(128), 
	lease_until FLOAT, 
	effect_attempt INTEGER, 
	next_attempt_at FLOAT, 
	published INTEGER NOT NULL, 
	result_ref VARCHAR(256), 
	output TEXT, 
	error_class VARCHAR(64), 
	error_message TEXT, 
	evidence TEXT, 
	history TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_transactions_workflow_case_ref UNIQUE (workflow, case_ref)
);
INSERT INTO "transactions" VALUES(1,'change-of-address','abc','b8f11fec41ac','CASE-000001','{"case_ref":"CASE-000001"}','queued',0,3,0,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,NULL,'[]',1.79537874957175898555e+09,1.79537874957175898555e+09);
CREATE TABLE workflow_versions (
	digest VARCHAR(32) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	version INTEGER NOT NULL, 
	source TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (digest)
);
CREATE INDEX ix_transactions_batch_state ON transactions (batch_id, state);
CREATE INDEX ix_transaction_events_transaction_id ON transaction_events (transaction_id);
