-- 018_due_plans_stale_stats — the due pass stays O(batch) when the statistics
-- predate a surge (issue 8, found by `make bench-long`, mode through-empty).
--
-- After a quiet spell ANALYZE has seen no waiting deliveries: every partial queue
-- index is recorded as empty, so all of them look equally cheap. For the due
-- pass (store.c, S_DUE) the planner then preferred deliveries_live_next
-- (next_attempt_at, every live row) to deliveries_pending (recipient,
-- delivery_id): it read the whole backlog, probed each row's correlation id and
-- sorted, where the pending index hands over the recipient's first rows in order.
-- Measured with 20 000 waiting for one recipient over 80 000 analysed
-- acknowledged rows: 41 545 buffers for 24 rows, against 138 with the pending
-- index (EXPLAIN ANALYZE); in the long mode 47-66 ms per pass, end to end at half
-- the rate of the same mode at 5 million stored.
--
-- A partial index serves a query only when the query's conditions imply the
-- index's predicate. "attempts >= 0" is always true (CHECK in 001), but only a
-- statement that says so can use this index: S_NEXT_DUE and S_RECIPIENTS_DUE
-- ("when is the next live delivery due", "who has one due") do; the due pass and
-- its probes do not, so their only candidates are the indexes made for them
-- (deliveries_pending, deliveries_retry, deliveries_unacked_order).
DROP INDEX deliveries_live_next;
CREATE INDEX deliveries_live_next ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'delivered') AND attempts >= 0;
