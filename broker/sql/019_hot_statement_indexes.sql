-- 019_hot_statement_indexes — indexes for the hot transactions' generic plans and
-- fewer index entries per message (issue 8).
--
-- 1. deliveries_unacked_order serves only the statements that say
--    "attempts >= 0" (always true: CHECK in 001), as 018 did for
--    deliveries_live_next. The hot transactions keep one generic plan per
--    statement (store.c, S_HOT_TXN_SQL). The ack batch (S_ACK_BATCH) says
--    "state <> 'acked'", which is this partial index's predicate, so when the
--    last ANALYZE saw nothing unacknowledged (a fresh database, a quiet spell)
--    its plan walked the whole index, every unacknowledged delivery of every
--    recipient, for each ack batch, instead of probing (message_id, recipient):
--    O(backlog) per batch after a surge, the 018 trap again (test_store "hot
--    transactions plan index probes" now counts such walks). The due pass and
--    the dead-letter list, which probe this index for "an older delivery of the
--    correlation id is still unacknowledged", say "attempts >= 0" too.
DROP INDEX deliveries_unacked_order;
CREATE INDEX deliveries_unacked_order ON deliveries (recipient, correlation_id, delivery_id)
    WHERE state <> 'acked' AND attempts >= 0;

-- 2. The case events' message index holds the "stored" events only. Every
--    message appends about seven case events (submitted, stored, delivered,
--    state:delivered, acknowledged, state:received, ...), and case_events_message
--    (001) took an entry for each: a random UUID key, about three index pages
--    touched per event. The store looks events up by message id for one kind
--    only, "stored" (S_MSGS_FIND: is the message already stored, with its event
--    hash; S_LEAVES_FIND: the leaf of its "stored" event for the receipt); both
--    say kind = 'stored', so this partial index serves them with one entry per
--    message. The trail and the auditors' queries find events by case token and
--    sequence (UNIQUE (case_token, seq)), which this does not change.
CREATE INDEX case_events_stored ON case_events (message_id) WHERE kind = 'stored';
DROP INDEX case_events_message;
