-- The processor's circuit breaker state, written with each heartbeat ('closed', 'open', 'half_open')
-- and read by the health check. Nullable: a heartbeat written by code that predates the column (a
-- rollback runs the older code on this schema) leaves it NULL, which the health check reads as unknown.
ALTER TABLE processor_heartbeat ADD COLUMN circuit_breaker text;
