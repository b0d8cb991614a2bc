-- 012_case_owner_first — every case token has an owner from its first message
-- (issue 3, audit): the sender of the first opening message of a case token
-- (referral.request, transfer.request, inquiry.request, tracing.request,
-- return.notice) owns it, so that only it may transfer the case and a transfer
-- request (transfer.ask) goes to it. Before, a case had no owner until its first
-- accepted transfer and any organisation could transfer it.
-- Recording the first owner appends no case event: the "stored" event of that
-- opening message already shows its sender. Later moves stay "owner_changed".

-- The first owner; a row already there (another broker, or a transfer) wins.
CREATE FUNCTION pt_case_owner_first(p_case_token text, p_owner text, p_at bigint)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO case_owners (case_token, owner, former_owners, updated_at)
    VALUES (p_case_token, p_owner, '', pt_ms_to_ts(p_at))
    ON CONFLICT (case_token) DO NOTHING;
$$;

-- Cases opened before this migration: the initiator of their earliest lifecycle
-- that is not a transfer request.
INSERT INTO case_owners (case_token, owner, former_owners, updated_at)
SELECT DISTINCT ON (case_token) case_token, initiator, '', created_at
  FROM lifecycles
 WHERE kind <> 'transfer_ask'
 ORDER BY case_token, created_at, correlation_id
    ON CONFLICT (case_token) DO NOTHING;
