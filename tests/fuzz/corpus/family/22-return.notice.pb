
TEST-RET-MX-DIF-2025-0019+
MX-DIFcw-tapachula-07MX-DIF-TAPACHULAe

Ana Luc√≠aPrueba Ejemplo"Anita0:⁄@RGTZesZmamb&
cpims_idTEST-MX-DIF-000123MX-DIF"8migranttrafficked_smuggled *migrant_in_transit*G*authorities*other_organizations2:XI-TEST-WITHHELDRÈ2Ü
TEST-PR-MX-2025-0042plan_restitucionÈ"SShe wishes to return to live with her aunt in Quetzaltenango (FICTIONAL TEST DATA).:ÈBlandJTec√∫n Um√°nPZGT-PGNb)TEST Casa Nuestras Ra√≠ces Quetzaltenangoj&Aunt assessed as willing and suitable.rfollow_up_dental_care