-- 002_lifecycle — current state of case lifecycles and case ownership (issue 3).
-- These two tables are CURRENT STATE and the broker role may update them; every
-- change is also appended to case_events ("state:<new state>", "owner_changed"),
-- chained like every other event, in the same transaction as the message that
-- caused it (store.c, pt_store_submit_batch).

CREATE TABLE lifecycles (
    correlation_id  uuid PRIMARY KEY,
    kind            text NOT NULL
                        CHECK (kind IN ('referral', 'transfer', 'transfer_ask', 'inquiry',
                                        'tracing', 'return')),
    state           text NOT NULL CHECK (length(state) BETWEEN 1 AND 31),
    initiator       text NOT NULL,
    counterparty    text NOT NULL,   -- organisation ids joined by ',' (tracing: focal points)
    case_token      text NOT NULL,
    respond_by_ms   bigint NOT NULL DEFAULT 0,   -- 0 = no deadline
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX lifecycles_case_token ON lifecycles (case_token);
-- The respond-by sweep looks only at lifecycles still waiting for an answer.
CREATE INDEX lifecycles_respond_by ON lifecycles (respond_by_ms)
    WHERE respond_by_ms > 0 AND state IN ('submitted', 'delivered', 'received');

CREATE TABLE case_owners (
    case_token      text PRIMARY KEY,
    owner           text NOT NULL,
    former_owners   text NOT NULL DEFAULT '',   -- joined by ','
    updated_at      timestamptz NOT NULL
);

-- Moves a lifecycle from old_state ('' = create it) to new_state. A row that is not
-- in old_state means another broker moved it since this one read it: raise a
-- serialization failure so the whole batch is retried with fresh state.
CREATE FUNCTION pt_lifecycle_apply(p_correlation uuid, p_kind text, p_old text, p_new text,
                                   p_initiator text, p_counterparty text, p_case_token text,
                                   p_respond_by bigint, p_at bigint) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF p_old = '' THEN
        INSERT INTO lifecycles (correlation_id, kind, state, initiator, counterparty,
                                case_token, respond_by_ms, created_at, updated_at)
        VALUES (p_correlation, p_kind, p_new, p_initiator, p_counterparty, p_case_token,
                p_respond_by, pt_ms_to_ts(p_at), pt_ms_to_ts(p_at))
        ON CONFLICT (correlation_id) DO NOTHING;
    ELSE
        UPDATE lifecycles SET state = p_new, counterparty = p_counterparty,
               respond_by_ms = p_respond_by, updated_at = pt_ms_to_ts(p_at)
         WHERE correlation_id = p_correlation AND state = p_old AND kind = p_kind;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'puente: lifecycle changed concurrently' USING ERRCODE = '40001';
    END IF;
END;
$$;

CREATE FUNCTION pt_case_owner_set(p_case_token text, p_owner text, p_former text, p_at bigint)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO case_owners (case_token, owner, former_owners, updated_at)
    VALUES (p_case_token, p_owner, p_former, pt_ms_to_ts(p_at))
    ON CONFLICT (case_token) DO UPDATE SET owner = EXCLUDED.owner,
        former_owners = EXCLUDED.former_owners, updated_at = EXCLUDED.updated_at;
$$;

GRANT SELECT, INSERT, UPDATE ON lifecycles, case_owners TO puente_broker;
