
TEST-INQ-US-ORR-2025-0031accepted/
SV-CONNAcw-conna-sm-02SV-CONNA-SAN-MIGUEL"9Home visit planned within two weeks. FICTIONAL TEST DATA.