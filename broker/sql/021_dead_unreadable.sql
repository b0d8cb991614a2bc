-- 021_dead_unreadable — a third dead-letter reason (issue 8's backlog drain found it).
--
-- 'unreadable': the delivery's stored envelope no longer decodes (a row damaged
-- in the database: the broker checked every envelope when it stored it). The
-- deliver stage used to skip such a delivery and leave it pending, so the same
-- rows were claimed again on every pass: a batch of them at the head of a
-- recipient's queue stopped everything behind it, for good. Now it is
-- dead-lettered at once (store.c, pt_store_dead_letter_unreadable) with the case
-- event dead_letter:unreadable (actor "broker"); the operator can repair the row
-- and requeue it, or drop it, like any dead letter.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_dead_reason_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_dead_reason_check
    CHECK (dead_reason IN ('attempts', 'expired', 'unreadable'));
