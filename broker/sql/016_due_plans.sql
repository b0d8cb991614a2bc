-- 016_due_plans — due deliveries stay O(backlog) when the statistics say the
-- backlog is empty (issue 8, found by `make bench-long`).
--
-- In a database with a long history, nearly every row of deliveries is 'acked',
-- and so are ANALYZE's statistics: the planner estimates one row for any
-- "state = 'pending'" or "state <> 'acked'" condition, and every partial index
-- looks equally cheap. It then probed "is there an older unacknowledged delivery
-- of this correlation id" (store.c, S_DUE) by reading the whole of
-- deliveries_unacked_next (next_attempt_at, every unacknowledged row) once for
-- each candidate: O(backlog²) per due pass. With 4 000 waiting deliveries over a
-- history of 100 000 acknowledged ones, one pass took 6.2 s (EXPLAIN ANALYZE; the
-- same pass now: 17 ms), and end to end fell to a tenth of the empty database's.
--
-- Two changes make the right plan the only one available:
--  * this index covers only the two live states. "state <> 'acked' AND state <>
--    'dropped'" (the probe's condition, which includes dead letters: they hold
--    back later messages) does not imply its predicate, so the probe cannot use it;
--    the one index left for the probe is deliveries_unacked_order
--    (recipient, correlation_id, delivery_id);
--  * the probe is written "NOT EXISTS (... OFFSET 0)" in S_DUE, which keeps it a
--    correlated subplan whose recipient and correlation id are index conditions,
--    instead of an anti-join whose inner side reads the recipient's whole backlog.
-- S_NEXT_DUE and S_RECIPIENTS_DUE ("what is live and when is it due") use this
-- index, with the same predicate.
DROP INDEX deliveries_unacked_next;
CREATE INDEX deliveries_live_next ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'delivered');
