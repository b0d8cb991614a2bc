-- 010_multi_broker — several active puente-broker processes over one database
-- (issue 9; docs/ha.md "Several brokers").
--
-- Delivery claims. A broker delivers only to the receiving connections it holds;
-- an organisation may hold one on each of several brokers. Before sending, a
-- broker claims the due deliveries of a recipient in one statement (store.c,
-- S_DUE: SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE ... SET claimed_by):
-- claimed_by is its instance id ([broker] instance_id), claim_expires_at the end
-- of its lease ([broker] delivery_lease). Another broker skips a delivery while
-- a live claim of someone else is on it, so no two brokers make the same attempt.
-- The claim stays after the send, until the acknowledgement: a live broker
-- renews the claims of the recipients it still has a connection for (the
-- retries of a delivery go to the connection that got the first attempt), and
-- gives them up (claim_expires_at = now, and a NOTIFY) when that connection
-- goes. A broker that dies stops renewing: once claim_expires_at passed, any
-- broker with a connection of that recipient takes the delivery over on its next
-- due pass. claimed_by is never cleared: it names the broker that made the last
-- attempt.
ALTER TABLE deliveries ADD COLUMN claimed_by text CHECK (length(claimed_by) BETWEEN 1 AND 128),
    ADD COLUMN claim_expires_at timestamptz;

-- Wake-ups between brokers (LISTEN/NOTIFY; each broker listens on a session of
-- its own, store.c pt_store_session_t). NOTIFY is delivered at COMMIT and only
-- if the transaction commits; identical notifications of one transaction are
-- folded into one. Polling stays the fallback ([broker] delivery_poll).
--   puente_delivery   payload: the recipient's org id: new deliveries were stored
--                     for it, or a broker gave up its claims on them
--   puente_notice     payload: the party's org id: new notices (007) for it
--   puente_directory  payload: "admin": sent by a broker (not a trigger) after an
--                     operator's change through it; the others reload their
--                     directory. Changes made with SQL behind the brokers' backs
--                     still need SIGHUP, as with one broker.
CREATE FUNCTION pt_notify_deliveries() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('puente_delivery', r.recipient)
        FROM (SELECT DISTINCT recipient FROM new_rows) AS r;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION pt_notify_deliveries();

CREATE FUNCTION pt_notify_notices() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('puente_notice', r.org_id)
        FROM (SELECT DISTINCT org_id FROM new_rows) AS r;
    RETURN NULL;
END;
$$;
CREATE TRIGGER notices_notify AFTER INSERT ON notices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION pt_notify_notices();

-- One audit log for all brokers. Its order is already the database's: leaves
-- are appended at COMMIT under the audit_head row lock (006). Checkpoints are
-- signed by one broker at a time, the holder of a session-level advisory lock
-- (store.c, S_SIGNER_LOCK_KEY) taken on its own session; when that broker dies
-- its session ends, the lock is free and the next broker to try takes it. Every
-- broker signs with the same broker key (docs/ha.md), so `puente audit verify`
-- checks checkpoints as before. signed_by names the broker instance that signed
-- (not covered by the signature: for operators, not for auditors).
ALTER TABLE checkpoints ADD COLUMN signed_by text CHECK (length(signed_by) BETWEEN 1 AND 128);
