"""Countries (ISO 3166-1 alpha-2) and the traffic regions they belong to.

Regions follow the spec's traffic split: North America (``na``), Europe (``eu``), Asia-Pacific
(``apac``) and everything else (``other``). ``unknown`` is the region of an event without a country.
"""

from __future__ import annotations

REGIONS = ("na", "eu", "apac", "other")
UNKNOWN_REGION = "unknown"

_BY_REGION = {
    # North America, Central America and the Caribbean.
    "na": "US CA MX GL PM BM BS CU JM HT DO PR VI VG AI AG BB BL BQ BZ CR CW DM GD GP GT HN KN KY LC MF "
    "MQ MS NI PA SV SX TC TT VC UM",
    "eu": "GB IE FR DE NL BE LU CH AT IT ES PT AD MC SM VA MT GI DK NO SE FI IS FO AX SJ EE LV LT PL CZ SK "
    "HU SI HR BA RS ME MK AL XK GR CY BG RO MD UA BY RU IM JE GG LI TR",
    # Asia (with the Middle East and Central Asia) and Oceania.
    "apac": "CN JP KR KP TW HK MO MN IN PK BD LK NP BT MV AF ID MY SG TH VN PH KH LA MM BN TL AU NZ PG FJ SB "
    "VU NC PF WS TO KI TV NR FM MH PW GU MP AS CK NU TK WF NF CX CC HM IO AE SA QA KW BH OM YE IR IQ "
    "JO IL PS LB SY KZ UZ TM KG TJ AZ GE AM PN",
    # South America, Africa, Antarctica and remote territories.
    "other": "BR AR CL CO PE VE EC BO PY UY GY SR GF FK GS EG MA DZ TN LY SD SS ET ER DJ SO KE UG TZ RW BI "
    "CD CG GA GQ CM CF TD NE NG BJ TG GH CI LR SL GN GW SN GM ML BF MR CV ST AO ZM ZW MW MZ MG MU SC KM "
    "RE YT NA BW ZA LS SZ SH EH AQ BV TF",
}

COUNTRY_REGION: dict[str, str] = {
    code: region for region, codes in _BY_REGION.items() for code in codes.split()
}
COUNTRIES: frozenset[str] = frozenset(COUNTRY_REGION)


def region_of(country: str | None) -> str:
    """Region code of an ISO alpha-2 country code; ``unknown`` for a missing or unknown one."""
    if not country:
        return UNKNOWN_REGION
    return COUNTRY_REGION.get(country.upper(), UNKNOWN_REGION)
