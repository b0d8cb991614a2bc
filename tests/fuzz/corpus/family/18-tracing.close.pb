
TEST-TR-XI-ISS-2025-0005TEST-TR-XI-ISS-2025-0005-1closed:	reunifiedB&
XI-ISScw-iss-geneva-09
XI-ISS-GVAJ#Tracing closed after reunification.