
TEST-INQ-US-ORR-2025-0031/
SV-CONNAcw-conna-sm-02SV-CONNA-SAN-MIGUELconditional"yGrandmother willing; household suitable if school enrolment and psychosocial follow-up are arranged. FICTIONAL TEST DATA.*é	