-- 009_dead_letter — dead letters (issue 6): deliveries the broker stopped
-- offering, kept with their reason until the operator requeues or drops them.
--
-- A delivery is dead-lettered (state 'dead') by the broker's sweep (store.c,
-- pt_store_dead_letter_sweep, once a second) when
--   'attempts': it was offered max_delivery_attempts times ([broker] config) and
--               the wait after the last offer passed without an acknowledgement;
--   'expired':  the message's expires_at passed before the recipient acknowledged.
-- A disabled recipient is NOT a reason: disabling is reversible, and its queue
-- waits for it (attempts only grow while it is connected).
--
-- A dead letter is not offered, not counted in the queue depth, and keeps its
-- attempts, reason and time; it still holds back the later messages of its
-- correlation id to the same recipient (order per correlation id is kept), which
-- stay queued until it is requeued (state 'pending', attempts 0) or dropped
-- (state 'dropped', final). Each change appends a case event in the same
-- transaction: dead_letter:attempts / dead_letter:expired (actor "broker"),
-- dead_letter:requeued / dead_letter:dropped (actor "operator"); counterparty the
-- recipient, detail the header SHA-256 like every message event. The operator's
-- free-text reason for a drop stays in this table (drop_note), never in the
-- append-only trail, where a name typed by mistake could not be erased.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'delivered', 'acked', 'dead', 'dropped'));

ALTER TABLE deliveries
    ADD COLUMN dead_reason text CHECK (dead_reason IN ('attempts', 'expired')),
    ADD COLUMN dead_at timestamptz,
    ADD COLUMN dropped_at timestamptz,
    ADD COLUMN drop_note text CHECK (length(drop_note) <= 500);

-- Listing and counting dead letters (per recipient, in submission order).
CREATE INDEX deliveries_dead ON deliveries (recipient, delivery_id) WHERE state = 'dead';
-- The expiry sweep: only deliveries still offered that carry an expiry.
CREATE INDEX deliveries_expiry ON deliveries (expires_at)
    WHERE state IN ('pending', 'delivered') AND expires_at IS NOT NULL;
