-- 008_key_windows — key rotation and revocation (issue 6).
--
-- org_keys (001) already keeps every key set of an organisation with its window
-- [valid_from, valid_until); the current set has valid_until NULL. This adds the
-- revocation: from revoked_at on, nothing signed with the set is accepted and its
-- CURVE key is not admitted; what it signed with a created time before revoked_at
-- and was stored before then stays verifiable (proto/pt_key_window.h has the rule).
-- `puente key rotate` sets the replaced set's valid_until to now + the overlap and
-- inserts the new set; `puente key revoke` sets revoked_at and the reason. Both
-- also append a case event (key_rotated / key_revoked) to the chain
-- "keys:<ORG>", so the key history is in the Merkle log as well.
--
-- The reason is the operator's text: it must not hold personal data (the CLI says so).

ALTER TABLE org_keys
    ADD COLUMN revoked_at    timestamptz,
    ADD COLUMN revoke_reason text,
    ADD CONSTRAINT org_keys_revocation_reason
        CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    ADD CONSTRAINT org_keys_revoke_reason_length
        CHECK (revoke_reason IS NULL OR length(revoke_reason) BETWEEN 1 AND 200);

-- The history only ever narrows: the keys, the organisation and the start of a
-- set never change, an end (valid_until, revoked_at) once set can only move
-- earlier, and no row is deleted. A changed window would change what old
-- signatures prove.
CREATE FUNCTION pt_org_keys_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'puente: DELETE on org_keys is forbidden: the key history is kept'
            USING ERRCODE = 'P0001';
    END IF;
    IF NEW.org_id IS DISTINCT FROM OLD.org_id
       OR NEW.sign_public IS DISTINCT FROM OLD.sign_public
       OR NEW.seal_public IS DISTINCT FROM OLD.seal_public
       OR NEW.curve_public IS DISTINCT FROM OLD.curve_public
       OR NEW.valid_from IS DISTINCT FROM OLD.valid_from
       OR (OLD.valid_until IS NOT NULL
           AND (NEW.valid_until IS NULL OR NEW.valid_until > OLD.valid_until))
       OR (OLD.revoked_at IS NOT NULL
           AND (NEW.revoked_at IS NULL OR NEW.revoked_at > OLD.revoked_at)) THEN
        RAISE EXCEPTION 'puente: org_keys may only end a key set earlier (set %)', OLD.key_set_id
            USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER org_keys_guard BEFORE UPDATE OR DELETE ON org_keys
    FOR EACH ROW EXECUTE FUNCTION pt_org_keys_guard();
CREATE TRIGGER org_keys_no_truncate BEFORE TRUNCATE ON org_keys
    FOR EACH STATEMENT EXECUTE FUNCTION pt_forbid_change();

-- Finding a set by its keys (a rotation refuses keys registered before).
CREATE INDEX org_keys_seal_key_id ON org_keys (seal_key_id);
CREATE INDEX org_keys_curve_public ON org_keys (curve_public);
