-- 006_audit_log — the global Merkle log, signed checkpoints, auditors, retention
-- (issue 4). Formats: proto/pt_audit.h (leaf encoding, checkpoint bytes) and
-- proto/pt_merkle.h (RFC 6962 hashing).
--
-- Every row inserted into case_events is appended to audit_log by a DEFERRED
-- constraint trigger, so in the same transaction as the event, but only at
-- COMMIT: the one-row audit_head is locked for the shortest possible time
-- (commit order = leaf order) and no transaction waits for anything while it
-- holds that lock (no deadlock with case_heads or lifecycle rows). Within a
-- transaction, leaves follow event_id order.
--
-- leaf_hash = SHA-256(0x00 || "puente.v1 leaf" || 0x00 || event_hash(32) || be64(event_id))
-- This SQL mirrors pt_audit_leaf_hash (C); `puente audit verify` recomputes every
-- leaf in C from case_events and fails on any difference.

CREATE FUNCTION pt_audit_leaf_hash(p_event_hash bytea, p_event_id bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN sha256('\x00'::bytea || convert_to('puente.v1 leaf', 'UTF8') || '\x00'::bytea
                  || p_event_hash || int8send(p_event_id));

-- The log's head. frontier: the roots of the perfect subtrees of the tree of
-- `size` leaves, largest (leftmost) first, 32 bytes each: one per bit set in
-- size (pt_audit_frontier_decode turns it into a pt_merkle_frontier_t).
CREATE TABLE audit_head (
    id          integer PRIMARY KEY CHECK (id = 1),
    size        bigint NOT NULL CHECK (size >= 0),
    frontier    bytea NOT NULL CHECK (length(frontier) % 32 = 0)
);
INSERT INTO audit_head (id, size, frontier) VALUES (1, 0, '\x'::bytea);

CREATE TABLE audit_log (
    leaf_index  bigint PRIMARY KEY CHECK (leaf_index >= 0),
    event_id    bigint NOT NULL UNIQUE,
    leaf_hash   bytea NOT NULL CHECK (length(leaf_hash) = 32)
);

-- Appends the events ids (in this order) to the log. RFC 6962 frontier: each leaf
-- merges the equal-sized subtrees on the right. One lock of audit_head, one insert,
-- one update, whatever the number of events.
CREATE FUNCTION pt_audit_append_events(p_ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint;
    v_first bigint;
    v_frontier bytea;
    v_carry bytea;
    v_bits bigint;
    v_len integer;
    v_event record;
    v_index bigint[] := '{}';
    v_event_ids bigint[] := '{}';
    v_leaves bytea[] := '{}';
BEGIN
    SELECT size, frontier INTO v_size, v_frontier FROM audit_head WHERE id = 1 FOR UPDATE;
    v_first := v_size;
    FOR v_event IN SELECT event_id, hash FROM case_events WHERE event_id = ANY(p_ids)
                   ORDER BY event_id LOOP
        v_carry := pt_audit_leaf_hash(v_event.hash, v_event.event_id);
        v_index := v_index || v_size;
        v_event_ids := v_event_ids || v_event.event_id;
        v_leaves := v_leaves || v_carry;
        v_bits := v_size;
        WHILE (v_bits & 1) = 1 LOOP
            v_len := length(v_frontier);
            v_carry := sha256('\x01'::bytea || substring(v_frontier FROM v_len - 31 FOR 32)
                              || v_carry);
            v_frontier := substring(v_frontier FROM 1 FOR v_len - 32);
            v_bits := v_bits >> 1;
        END LOOP;
        v_frontier := v_frontier || v_carry;
        v_size := v_size + 1;
    END LOOP;
    IF v_size > v_first THEN
        INSERT INTO audit_log (leaf_index, event_id, leaf_hash)
        SELECT * FROM unnest(v_index, v_event_ids, v_leaves);
        UPDATE audit_head SET size = v_size, frontier = v_frontier WHERE id = 1;
    END IF;
    RETURN v_size - v_first;
END;
$$;

-- Two triggers share the work so that a transaction pays one call of
-- pt_audit_append_events, at COMMIT: each INSERT statement notes its event ids in
-- the transaction-local setting puente.audit_pending; the deferred row trigger
-- fires at COMMIT, and its first call appends every noted event and clears the
-- note (the later calls find it empty). Savepoint rollbacks undo the note too.
CREATE FUNCTION pt_audit_note_events() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_ids text;
BEGIN
    SELECT string_agg(event_id::text, ',' ORDER BY event_id) INTO v_ids FROM new_events;
    IF v_ids IS NOT NULL THEN
        PERFORM set_config('puente.audit_pending',
                           concat_ws(',', nullif(current_setting('puente.audit_pending', true), ''),
                                     v_ids), true);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION pt_audit_on_commit() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_pending text := current_setting('puente.audit_pending', true);
BEGIN
    IF v_pending IS NULL OR v_pending = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('puente.audit_pending', '', true);
    PERFORM pt_audit_append_events(string_to_array(v_pending, ',')::bigint[]);
    RETURN NULL;
END;
$$;

-- Events written before this migration join the log first, in event_id order.
SELECT pt_audit_append_events(ARRAY(SELECT event_id FROM case_events ORDER BY event_id));

CREATE TRIGGER case_events_audit_note AFTER INSERT ON case_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT
    EXECUTE FUNCTION pt_audit_note_events();
CREATE CONSTRAINT TRIGGER case_events_audit_log AFTER INSERT ON case_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pt_audit_on_commit();

-- Signed tree heads (pt_audit.h: "puente.v1 checkpoint"). signer = the broker's
-- Ed25519 public key that signed.
CREATE TABLE checkpoints (
    tree_size   bigint PRIMARY KEY CHECK (tree_size >= 0),
    root        bytea NOT NULL CHECK (length(root) = 32),
    at_ms       bigint NOT NULL,
    signer      bytea NOT NULL CHECK (length(signer) = 32),
    signature   bytea NOT NULL CHECK (length(signature) = 64)
);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION pt_forbid_change();

-- --- auditors -------------------------------------------------------------------

-- scope: country codes ("GT") and organisation ids ("HN-DINAF"); a case is in
-- scope when its sender or one of its recipients is in a listed country or is a
-- listed organisation.
CREATE TABLE auditors (
    auditor_id      text PRIMARY KEY CHECK (length(auditor_id) BETWEEN 1 AND 32),
    scope           text[] NOT NULL CHECK (cardinality(scope) >= 1),
    sign_public     bytea NOT NULL CHECK (length(sign_public) = 32),
    curve_public    bytea NOT NULL CHECK (length(curve_public) = 32),
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- --- retention --------------------------------------------------------------------

-- retention_days: sealed payloads of messages under this agreement are deleted
-- this many days after they were stored (0 = kept). payload_deleted_at marks a
-- message whose envelope was rewritten without its sealed payload bytes (header
-- bytes and signature unchanged).
ALTER TABLE agreements ADD COLUMN retention_days integer NOT NULL DEFAULT 0
    CHECK (retention_days >= 0);
ALTER TABLE messages ADD COLUMN payload_deleted_at timestamptz;

-- Messages stay append-only except for exactly one change: deleting the payload
-- once (envelope rewritten, payload_deleted_at set from NULL). Every other
-- column must stay as it was.
CREATE FUNCTION pt_messages_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.payload_deleted_at IS NULL AND NEW.payload_deleted_at IS NOT NULL
       AND NEW.message_id = OLD.message_id AND NEW.seq = OLD.seq
       AND NEW.correlation_id = OLD.correlation_id
       AND NEW.causation_id IS NOT DISTINCT FROM OLD.causation_id
       AND NEW.message_type = OLD.message_type AND NEW.sender = OLD.sender
       AND NEW.recipients = OLD.recipients AND NEW.case_token = OLD.case_token
       AND NEW.purpose IS NOT DISTINCT FROM OLD.purpose
       AND NEW.agreement_id IS NOT DISTINCT FROM OLD.agreement_id
       AND NEW.created_at = OLD.created_at
       AND NEW.expires_at IS NOT DISTINCT FROM OLD.expires_at
       AND NEW.stored_at = OLD.stored_at AND NEW.header_sha256 = OLD.header_sha256 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'puente: % on % is forbidden: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'P0001';
END;
$$;
DROP TRIGGER messages_append_only ON messages;
CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION pt_messages_guard();

-- --- grants -------------------------------------------------------------------------

GRANT SELECT, INSERT ON audit_log, checkpoints TO puente_broker;
GRANT SELECT, UPDATE ON audit_head TO puente_broker;
GRANT SELECT, INSERT, UPDATE ON auditors TO puente_broker;
GRANT UPDATE (envelope, payload_deleted_at) ON messages TO puente_broker;

-- The verifier's role (`puente audit verify --db`): reads, never writes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'puente_auditor') THEN
        CREATE ROLE puente_auditor NOLOGIN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO puente_auditor', current_schema());
END;
$$;
GRANT SELECT ON messages, case_events, audit_log, audit_head, checkpoints, org_keys,
    organisations, agreements, auditors TO puente_auditor;
