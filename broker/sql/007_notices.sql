-- 007_notices — durable notices to the parties of a lifecycle (issue 3: "overdue
-- items raise events in the trail and a notice to both sides").
-- The deadline sweeps (store.c, S_LC_EXPIRE / S_LC_FOLLOW_UP_OVERDUE) insert one
-- row per party (the initiator and every counterparty) in the same statement,
-- hence the same transaction, that records the "overdue" event. The broker sends
-- a party its unacknowledged notices when its receiving connection attaches and
-- when they are created; notice_ack sets acked_at and ends the resending.
-- Nothing personal: a case token (a pseudonym), ids, a type and times.

CREATE TABLE notices (
    notice_id       bigserial PRIMARY KEY,
    org_id          text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('overdue')),
    case_token      text NOT NULL,
    correlation_id  uuid NOT NULL,
    message_type    text NOT NULL,   -- the message the deadline waits on / belongs to
    due_at          timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,     -- last handed to a receiving connection
    acked_at        timestamptz      -- acknowledged by the party: never sent again
);
-- A party's pending notices (attach) and the not yet sent ones (creation).
CREATE INDEX notices_unacked ON notices (org_id, notice_id) WHERE acked_at IS NULL;

-- The broker may add notices and mark them sent or acknowledged, nothing else.
GRANT SELECT, INSERT ON notices TO puente_broker;
GRANT UPDATE (delivered_at, acked_at) ON notices TO puente_broker;
GRANT USAGE ON SEQUENCE notices_notice_id_seq TO puente_broker;
