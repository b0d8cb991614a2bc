
TEST-TR-XI-ISS-2025-0005&
XI-ISScw-iss-geneva-09
XI-ISS-GVA@
Rosa Ejemplo Ficticiamother& *es2GT:
XI-ISS-GVABÈ
"Ü
TEST-TR-XI-ISS-2025-0005-1son.
MateoEjemplo Ficticio0@HRGTZesZkiche"3
Ë	migrationTec√∫n Um√°n, GT"Tapachula, MX"à
TEST-TR-XI-ISS-2025-0005-2daughter&
Luc√≠aEjemplo Ficticio0@RGTZes"8
Ë	migrationTec√∫n Um√°n, GT"San Pedro Sula, HN*GT*HN*SV2 2RÈ
8