-- 001_init — the broker's schema. Applied by pt_store_migrate() inside one
-- transaction under an advisory lock and recorded in schema_migrations (which
-- store.c creates); do not add BEGIN/COMMIT here.
--
-- Times: every time the broker stores is a millisecond count since the Unix epoch
-- taken from the BROKER's clock (the caller's now_ms, or the store's own clock for
-- "stored"), never the database's now(). Columns are timestamptz for people
-- reading the database; pt_ms_to_ts/pt_ts_to_ms convert exactly (no floating
-- point). Case events keep at_ms as a bigint because it is hashed into the chain.
--
-- Append-only: messages and case_events refuse UPDATE, DELETE and TRUNCATE for
-- everyone (trigger), and the role puente_broker, which the broker switches to
-- with SET ROLE after migrating, may only SELECT and INSERT them. Retention
-- (deleting ciphertext at end of life) will come in its own migration.

CREATE FUNCTION pt_ms_to_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN timestamptz 'epoch' + ms * interval '1 millisecond';

CREATE FUNCTION pt_ts_to_ms(ts timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN floor(extract(epoch FROM ts) * 1000)::bigint;

CREATE FUNCTION pt_forbid_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'puente: % on % is forbidden: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'P0001';
END;
$$;

-- --- directory -------------------------------------------------------------

CREATE TABLE organisations (
    org_id      text PRIMARY KEY CHECK (length(org_id) BETWEEN 1 AND 32),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Key history: the current key set has valid_until NULL; replaced sets keep their
-- validity window so old signatures stay checkable. Key id = SHA-256 of the raw
-- public key (pt_crypto.h).
CREATE TABLE org_keys (
    key_set_id      bigserial PRIMARY KEY,
    org_id          text NOT NULL REFERENCES organisations (org_id),
    sign_public     bytea NOT NULL CHECK (length(sign_public) = 32),
    seal_public     bytea NOT NULL CHECK (length(seal_public) = 32),
    curve_public    bytea NOT NULL CHECK (length(curve_public) = 32),
    sign_key_id     bytea GENERATED ALWAYS AS (sha256(sign_public)) STORED,
    seal_key_id     bytea GENERATED ALWAYS AS (sha256(seal_public)) STORED,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz,
    CHECK (valid_until IS NULL OR valid_until >= valid_from)
);
CREATE UNIQUE INDEX org_keys_one_current ON org_keys (org_id) WHERE valid_until IS NULL;
CREATE INDEX org_keys_sign_key_id ON org_keys (sign_key_id);

CREATE TABLE agreements (
    agreement_id    text PRIMARY KEY CHECK (length(agreement_id) BETWEEN 1 AND 128),
    org_a           text NOT NULL REFERENCES organisations (org_id),
    org_b           text NOT NULL REFERENCES organisations (org_id),
    purposes        text[] NOT NULL,
    message_types   text[] NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz,   -- NULL = open-ended
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (array_position(purposes, NULL) IS NULL AND array_position(message_types, NULL) IS NULL)
);

-- --- messages and deliveries -------------------------------------------------

-- One row per accepted message; envelope is the packed Envelope exactly as
-- received (signed header bytes + sealed payload). seq gives submission order.
CREATE TABLE messages (
    message_id      uuid PRIMARY KEY,
    seq             bigserial NOT NULL UNIQUE,
    correlation_id  uuid NOT NULL,
    causation_id    uuid,
    message_type    text NOT NULL,
    sender          text NOT NULL,
    recipients      text[] NOT NULL CHECK (cardinality(recipients) >= 1),
    case_token      text NOT NULL,
    purpose         text,
    agreement_id    text,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz,   -- NULL = never
    stored_at       timestamptz NOT NULL,
    header_sha256   bytea NOT NULL CHECK (length(header_sha256) = 32),
    envelope        bytea NOT NULL
);
CREATE INDEX messages_correlation ON messages (correlation_id, seq);
CREATE INDEX messages_case_token ON messages (case_token, seq);

CREATE TABLE deliveries (
    delivery_id         bigserial PRIMARY KEY,
    message_id          uuid NOT NULL REFERENCES messages (message_id),
    recipient           text NOT NULL,
    correlation_id      uuid NOT NULL,
    seq                 bigint NOT NULL,   -- messages.seq
    state               text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'delivered', 'acked')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at     timestamptz NOT NULL,
    first_delivered_at  timestamptz,
    acked_at            timestamptz,
    expires_at          timestamptz,   -- NULL = never
    UNIQUE (message_id, recipient)
);
CREATE INDEX deliveries_due ON deliveries (recipient, state, next_attempt_at);
CREATE INDEX deliveries_order ON deliveries (recipient, correlation_id, delivery_id);
CREATE INDEX deliveries_unacked_next ON deliveries (next_attempt_at) WHERE state <> 'acked';

-- --- case trail ----------------------------------------------------------------

-- Per-case hash chain (format: proto/pt_trail.h). hash covers every other column
-- except event_id; message events carry the header's SHA-256 as detail.
CREATE TABLE case_events (
    event_id        bigserial PRIMARY KEY,
    case_token      text NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 1),
    kind            text NOT NULL,
    at_ms           bigint NOT NULL,
    actor           text NOT NULL,
    counterparty    text NOT NULL DEFAULT '',
    message_type    text NOT NULL DEFAULT '',
    message_id      uuid,
    detail          bytea NOT NULL DEFAULT '\x'::bytea,
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    UNIQUE (case_token, seq)
);
CREATE INDEX case_events_message ON case_events (message_id, kind) WHERE message_id IS NOT NULL;

-- The head of each case's chain. Appending takes this row FOR UPDATE, so appends
-- to one case are serialised across connections and brokers.
CREATE TABLE case_heads (
    case_token  text PRIMARY KEY,
    last_seq    bigint NOT NULL CHECK (last_seq >= 0),
    last_hash   bytea NOT NULL CHECK (length(last_hash) = 32)
);

-- --- append-only enforcement ------------------------------------------------------

CREATE TRIGGER messages_append_only BEFORE UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION pt_forbid_change();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
    FOR EACH STATEMENT EXECUTE FUNCTION pt_forbid_change();

-- --- the broker's restricted role -------------------------------------------------

-- Roles are cluster-wide: create it only if another database has not already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'puente_broker') THEN
        CREATE ROLE puente_broker NOLOGIN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO puente_broker', current_schema());
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO puente_broker', current_schema());
END;
$$;

GRANT SELECT, INSERT ON messages, case_events TO puente_broker;
GRANT SELECT, INSERT, UPDATE ON deliveries, case_heads, organisations, org_keys, agreements
    TO puente_broker;
GRANT SELECT ON schema_migrations TO puente_broker;
