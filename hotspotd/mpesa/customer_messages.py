"""What the customer reads about a purchase, in English ("en") and Swahili ("sw").

One sentence per Daraja result code, push refusal and ending of our own, always with the
next step. `customer_message(result_code, status, lang)` picks it; unknown codes fall back
to a message per status, unknown languages to English.
"""

from __future__ import annotations

from hotspotd.ledger.payment_line import QUEUE_TIMEOUT_CODE

LANGUAGES = ("en", "sw")
UNCERTAIN_CODE = "HOTSPOTD_UNCERTAIN"  # pending: the push call got no answer
LIMITED_CODE = "HOTSPOTD_LIMITED"      # refused by our own abuse limits
UNREACHABLE_CODE = "DarajaUnreachable"
QUEUED_CODE = "HOTSPOTD_QUEUED"        # pending: in line for the Daraja budget, not sent yet

_TRY_AGAIN_EN = " Nothing was charged; you can try again."
_TRY_AGAIN_SW = " Hakuna pesa iliyokatwa; unaweza kujaribu tena."

# code -> (English, Swahili)
_BY_CODE: dict[str, tuple[str, str]] = {
    "1": ("Your M-Pesa balance is not enough for this plan. Top up or pick a cheaper plan.",
          "Salio lako la M-Pesa halitoshi kwa kifurushi hiki. Ongeza salio au chagua"
          " kifurushi cha bei nafuu."),
    "2": ("The amount is below the M-Pesa minimum." + _TRY_AGAIN_EN,
          "Kiasi ni chini ya kiwango cha chini cha M-Pesa." + _TRY_AGAIN_SW),
    "3": ("The amount is above the M-Pesa maximum. Pick a cheaper plan.",
          "Kiasi kinazidi kiwango cha juu cha M-Pesa. Chagua kifurushi cha bei nafuu."),
    "4": ("This payment would pass your daily M-Pesa limit. Try a cheaper plan or tomorrow.",
          "Malipo haya yatazidi kikomo chako cha siku cha M-Pesa. Jaribu kifurushi cha bei"
          " nafuu au kesho."),
    "8": ("The business cannot receive more M-Pesa money right now. Please tell the staff.",
          "Biashara haiwezi kupokea pesa zaidi za M-Pesa sasa hivi. Tafadhali waambie"
          " wahudumu."),
    "17": ("You paid the same amount moments ago. Wait two minutes before trying again.",
           "Umelipa kiasi hicho hicho muda mfupi uliopita. Subiri dakika mbili kisha ujaribu"
           " tena."),
    "26": ("M-Pesa is busy." + _TRY_AGAIN_EN + " Wait a minute first.",
           "M-Pesa ina shughuli nyingi." + _TRY_AGAIN_SW + " Subiri dakika moja kwanza."),
    "1001": ("Another M-Pesa request is open on your phone. Finish or cancel it, wait a"
             " minute, then try again.",
             "Kuna ombi lingine la M-Pesa kwenye simu yako. Limalize au ulighairi, subiri"
             " dakika moja, kisha ujaribu tena."),
    "1019": ("The payment request expired before it was answered." + _TRY_AGAIN_EN,
             "Ombi la malipo liliisha muda kabla ya kujibiwa." + _TRY_AGAIN_SW),
    "1025": ("M-Pesa could not show the prompt on your phone." + _TRY_AGAIN_EN,
             "M-Pesa haikuweza kuonyesha ombi kwenye simu yako." + _TRY_AGAIN_SW),
    "1032": ("You cancelled the payment on your phone." + _TRY_AGAIN_EN,
             "Ulighairi malipo kwenye simu yako." + _TRY_AGAIN_SW),
    "1036": ("M-Pesa could not deliver the prompt to your phone." + _TRY_AGAIN_EN,
             "M-Pesa haikuweza kufikisha ombi kwenye simu yako." + _TRY_AGAIN_SW),
    "1037": ("Your phone could not be reached or the prompt was not answered in time. Keep"
             " the phone on and unlocked, then try again. Nothing was charged.",
             "Simu yako haikupatikana au ombi halikujibiwa kwa wakati. Washa simu na uifungue,"
             " kisha ujaribu tena. Hakuna pesa iliyokatwa."),
    "2001": ("The M-Pesa PIN was wrong." + _TRY_AGAIN_EN + " Use your correct PIN.",
             "PIN ya M-Pesa haikuwa sahihi." + _TRY_AGAIN_SW + " Tumia PIN yako sahihi."),
    "2028": ("The venue's M-Pesa settings are wrong. Please tell the staff; nothing was"
             " charged.",
             "Mipangilio ya M-Pesa ya biashara si sahihi. Tafadhali waambie wahudumu; hakuna"
             " pesa iliyokatwa."),
    "8006": ("The venue's M-Pesa account is locked. Please tell the staff; nothing was"
             " charged.",
             "Akaunti ya M-Pesa ya biashara imefungwa. Tafadhali waambie wahudumu; hakuna pesa"
             " iliyokatwa."),
    "9999": ("M-Pesa could not send the prompt." + _TRY_AGAIN_EN,
             "M-Pesa haikuweza kutuma ombi." + _TRY_AGAIN_SW),
    # Push refusals (Daraja error codes).
    "400.002.02": ("M-Pesa did not accept the request: check the phone number and try again.",
                   "M-Pesa haikukubali ombi: hakikisha namba ya simu kisha ujaribu tena."),
    "500.001.1001": ("Another M-Pesa request is already open on this phone. Finish or cancel"
                     " it, wait a minute, then try again.",
                     "Kuna ombi lingine la M-Pesa tayari kwenye simu hii. Limalize au"
                     " ulighairi, subiri dakika moja, kisha ujaribu tena."),
    "500.003.02": ("M-Pesa is busy right now (too many requests). Please try again in a"
                   " minute; nothing was charged.",
                   "M-Pesa ina shughuli nyingi sasa hivi. Tafadhali jaribu tena baada ya"
                   " dakika moja; hakuna pesa iliyokatwa."),
    "500.003.03": ("The venue has reached its M-Pesa request limit. Please try again later or"
                   " ask the staff for a voucher; nothing was charged.",
                   "Biashara imefikia kikomo cha maombi ya M-Pesa. Tafadhali jaribu tena baadaye"
                   " au omba vocha kwa wahudumu; hakuna pesa iliyokatwa."),
    UNREACHABLE_CODE: ("M-Pesa could not be reached just now. Please try again in a minute;"
                       " nothing was charged.",
                       "M-Pesa haipatikani kwa sasa. Tafadhali jaribu tena baada ya dakika"
                       " moja; hakuna pesa iliyokatwa."),
    # Our own endings.
    "HOTSPOTD_INTERRUPTED": ("The payment request was interrupted before M-Pesa confirmed it."
                             " If you approved a prompt, your payment will still be matched"
                             " to you; otherwise nothing was charged.",
                             "Ombi la malipo lilikatizwa kabla M-Pesa kulithibitisha. Kama"
                             " uliidhinisha ombi, malipo yako yatatambuliwa; vinginevyo"
                             " hakuna pesa iliyokatwa."),
    "HOTSPOTD_TIMEOUT": ("M-Pesa gave no final answer in time. If you were charged, your"
                         " payment will still be matched to you; otherwise try again.",
                         "M-Pesa haikutoa jibu la mwisho kwa wakati. Kama ulikatwa pesa,"
                         " malipo yako yatatambuliwa; vinginevyo jaribu tena."),
    LIMITED_CODE: ("Too many payment requests from this device or phone. Wait a few minutes"
                   " and try again, or ask the staff for a voucher.",
                   "Maombi mengi mno ya malipo kutoka kifaa hiki au simu hii. Subiri dakika"
                   " chache kisha ujaribu tena, au omba vocha kwa wahudumu."),
    QUEUED_CODE: ("You are in line: many people are paying right now. The M-Pesa prompt will"
                  " come to your phone shortly; keep this page open and do not pay again.",
                  "Uko kwenye foleni: watu wengi wanalipa sasa hivi. Ombi la M-Pesa litakuja"
                  " kwenye simu yako hivi punde; acha ukurasa huu wazi na usilipe tena."),
    QUEUE_TIMEOUT_CODE: ("M-Pesa was too busy to send you the prompt in time. No prompt was"
                         " sent and nothing was charged; please try again in a few minutes.",
                         "M-Pesa ilikuwa na shughuli nyingi mno kukutumia ombi kwa wakati."
                         " Hakuna ombi lililotumwa na hakuna pesa iliyokatwa; tafadhali"
                         " jaribu tena baada ya dakika chache."),
    UNCERTAIN_CODE: ("M-Pesa is slow to answer. Check your phone: if a prompt appears, enter"
                     " your PIN. Do not pay again; we are checking the payment.",
                     "M-Pesa inachelewa kujibu. Angalia simu yako: ombi likitokea, weka PIN"
                     " yako. Usilipe tena; tunathibitisha malipo."),
}

_BY_STATUS: dict[str, tuple[str, str]] = {
    "pending": ("Check your phone and enter your M-Pesa PIN to pay.",
                "Angalia simu yako na uweke PIN yako ya M-Pesa kulipa."),
    "completed": ("Paid. You are connected.", "Umelipa. Umeunganishwa."),
    "failed": ("The payment did not go through." + _TRY_AGAIN_EN,
               "Malipo hayakufanikiwa." + _TRY_AGAIN_SW),
    "cancelled": ("The payment was cancelled." + _TRY_AGAIN_EN,
                  "Malipo yalighairiwa." + _TRY_AGAIN_SW),
    "expired": ("The payment request expired." + _TRY_AGAIN_EN,
                "Ombi la malipo liliisha muda." + _TRY_AGAIN_SW),
}


def customer_message(result_code: str | None, status: str, lang: str = "en") -> str:
    """The sentence (with the next step) for a purchase in this state."""
    index = 1 if lang == "sw" else 0
    if status == "completed":
        return _BY_STATUS["completed"][index]
    if status == "pending" and result_code not in (UNCERTAIN_CODE, QUEUED_CODE):
        return _BY_STATUS["pending"][index]
    if result_code is not None and result_code in _BY_CODE:
        return _BY_CODE[result_code][index]
    return _BY_STATUS.get(status, _BY_STATUS["failed"])[index]


def known_codes() -> list[str]:
    return sorted(_BY_CODE)


# Refusals by our own abuse limits (mpesa.push_limits), by reason: why, and when to try
# again ({minutes}). Nothing was stored or sent for a refused purchase.
_NOTHING_EN = " Nothing was charged."
_NOTHING_SW = " Hakuna pesa iliyokatwa."
_LIMITS: dict[str, tuple[str, str]] = {
    "open": ("You already have a payment waiting on this device. Answer or cancel the M-Pesa"
             " prompt on your phone; when it ends you can buy again (at the latest in about"
             " {minutes} min).",
             "Tayari una malipo yanayosubiri kwenye kifaa hiki. Jibu au ghairi ombi la M-Pesa"
             " kwenye simu yako; yakiisha unaweza kununua tena (kabla ya takriban dakika"
             " {minutes})."),
    "device": ("Too many unpaid payment requests from this device. Try again in about"
               " {minutes} min, or ask the staff for a voucher." + _NOTHING_EN,
               "Maombi mengi mno ya malipo yasiyolipwa kutoka kifaa hiki. Jaribu tena baada"
               " ya takriban dakika {minutes}, au omba vocha kwa wahudumu."
               + _NOTHING_SW),
    "phone": ("This number has had too many unpaid payment prompts. Try again in about"
              " {minutes} min, use another number, or ask the staff for a voucher."
              + _NOTHING_EN,
              "Nambari hii imepokea maombi mengi mno ya malipo yasiyolipwa. Jaribu tena baada"
              " ya takriban dakika {minutes}, tumia nambari nyingine, au omba vocha kwa"
              " wahudumu." + _NOTHING_SW),
    "cooldown": ("This number cancelled or did not answer its last payment prompts, so it"
                 " gets none for about {minutes} min. Use another number or ask the staff"
                 " for a voucher." + _NOTHING_EN,
                 "Nambari hii ilighairi au haikujibu maombi yake ya malipo yaliyopita, kwa"
                 " hivyo haitapata ombi kwa takriban dakika {minutes}. Tumia nambari"
                 " nyingine au omba vocha kwa wahudumu." + _NOTHING_SW),
    "line": ("Too many people are paying right now and the line for M-Pesa is full. Try"
             " again in about {minutes} min, or ask the staff for a voucher."
             + _NOTHING_EN,
             "Watu wengi mno wanalipa sasa hivi na foleni ya M-Pesa imejaa. Jaribu tena baada"
             " ya takriban dakika {minutes}, au omba vocha kwa wahudumu."
             + _NOTHING_SW),
}
LIMIT_REASONS = tuple(_LIMITS)


def limit_message(reason: str, minutes: int, lang: str = "en") -> str:
    """Why a purchase was refused by a limit, and in how many minutes to try again."""
    english, swahili = _LIMITS.get(reason, _LIMITS["device"])
    return (swahili if lang == "sw" else english).format(minutes=minutes)
