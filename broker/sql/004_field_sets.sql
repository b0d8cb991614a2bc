-- 004_field_sets — field minimisation per agreement and purpose (issue 3).
-- Each element is "purpose=path1,path2" (see control.proto FieldSet): the
-- payload fields the agreement lets through for that purpose. A purpose without
-- an element is not restricted, so agreements made before this migration keep
-- working. The broker cannot read payloads: it stores and serves the sets in
-- its signed directory, and the SDKs of both sides enforce them.
ALTER TABLE agreements ADD COLUMN field_sets text[] NOT NULL DEFAULT '{}';
