-- 005_delivery_queue — due deliveries found through indexes (issue 8).
-- The due query (store.c, S_DUE) used to read every unacknowledged delivery of
-- a recipient and sort them: 114 ms per pass with 6 000 pending. It now walks
-- never-sent deliveries in submission order (deliveries_pending), retries by
-- due time (deliveries_retry), and tests "oldest unacknowledged of its
-- correlation id" with one probe of deliveries_unacked_order. The partial
-- indexes hold only rows still in that state, so they stay as small as the
-- backlog, not as large as the history.
CREATE INDEX deliveries_pending ON deliveries (recipient, delivery_id) WHERE state = 'pending';
CREATE INDEX deliveries_retry ON deliveries (recipient, next_attempt_at) WHERE state = 'delivered';
CREATE INDEX deliveries_unacked_order ON deliveries (recipient, correlation_id, delivery_id)
    WHERE state <> 'acked';
-- Superseded by the three above; every index costs each insert and update.
DROP INDEX deliveries_due;
DROP INDEX deliveries_order;

-- Group commit applies the lifecycle changes of a batch as multi-row statements
-- (store.c, S_LC_CREATE_MANY / S_LC_MOVE_MANY); when fewer rows than expected
-- were created or moved, another broker got there first: the statement raises
-- a serialization failure, so the whole batch is rolled back and retried, as
-- pt_lifecycle_apply does for one row.
CREATE FUNCTION pt_lifecycle_conflict() RETURNS integer
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'puente: lifecycle changed concurrently' USING ERRCODE = '40001';
END;
$$;
