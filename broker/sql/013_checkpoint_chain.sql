-- 013_checkpoint_chain — checkpoints form a signed hash chain (issue 4 follow-up).
-- Format: proto/pt_audit.h ("puente.v2 checkpoint"): the signed bytes carry seq
-- (1, 2, 3, ... without gaps) and prev_hash, the hash of checkpoint seq - 1
-- (32 zero bytes for seq 1), so `puente audit verify` sees a deleted, inserted or
-- reordered checkpoint. Rows written before this migration keep seq and
-- prev_hash NULL and verify in the version 1 format; the chain starts at the
-- first version 2 checkpoint.
ALTER TABLE checkpoints ADD COLUMN seq bigint UNIQUE CHECK (seq >= 1);
ALTER TABLE checkpoints ADD COLUMN prev_hash bytea CHECK (length(prev_hash) = 32);
ALTER TABLE checkpoints ADD CONSTRAINT checkpoints_seq_prev_together
    CHECK ((seq IS NULL) = (prev_hash IS NULL));
