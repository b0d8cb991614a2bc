-- 003_deadlines_services — follow-up due dates and overdue marks on lifecycles,
-- and the service types an organisation receives (issue 3).

-- follow_up_due_ms: the next follow-up of a reintegration plan (header field
-- follow_up_due_ms of reintegration.plan / reintegration.followup), 0 = none.
-- overdue_at_ms: when the broker raised "overdue" for the current deadline
-- (0 = not overdue); a later move of the lifecycle clears it, so each deadline
-- is raised once.
ALTER TABLE lifecycles
    ADD COLUMN follow_up_due_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN overdue_at_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN overdue_deadline text NOT NULL DEFAULT ''
        CHECK (overdue_deadline IN ('', 'respond_by', 'follow_up'));
CREATE INDEX lifecycles_follow_up_due ON lifecycles (follow_up_due_ms)
    WHERE follow_up_due_ms > 0 AND overdue_at_ms = 0;
CREATE INDEX lifecycles_overdue ON lifecycles (overdue_at_ms) WHERE overdue_at_ms > 0;

-- Service types the organisation receives, joined by ','; '' = accepts every
-- service type (registrations made before this migration keep working).
ALTER TABLE organisations ADD COLUMN service_types text NOT NULL DEFAULT '';

DROP FUNCTION pt_lifecycle_apply(uuid, text, text, text, text, text, text, bigint, bigint);

CREATE FUNCTION pt_lifecycle_apply(p_correlation uuid, p_kind text, p_old text, p_new text,
                                   p_initiator text, p_counterparty text, p_case_token text,
                                   p_respond_by bigint, p_at bigint, p_follow_up_due bigint)
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_old = '' THEN
        INSERT INTO lifecycles (correlation_id, kind, state, initiator, counterparty,
                                case_token, respond_by_ms, follow_up_due_ms, created_at,
                                updated_at)
        VALUES (p_correlation, p_kind, p_new, p_initiator, p_counterparty, p_case_token,
                p_respond_by, p_follow_up_due, pt_ms_to_ts(p_at), pt_ms_to_ts(p_at))
        ON CONFLICT (correlation_id) DO NOTHING;
    ELSE
        UPDATE lifecycles SET state = p_new, counterparty = p_counterparty,
               respond_by_ms = p_respond_by, follow_up_due_ms = p_follow_up_due,
               overdue_at_ms = 0, overdue_deadline = '', updated_at = pt_ms_to_ts(p_at)
         WHERE correlation_id = p_correlation AND state = p_old AND kind = p_kind;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'puente: lifecycle changed concurrently' USING ERRCODE = '40001';
    END IF;
END;
$$;
