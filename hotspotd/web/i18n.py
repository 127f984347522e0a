"""The portal's words in English and Swahili, durations and money written the local way.

The language comes from `?lang=`, then the `lang` cookie (set by the visible switch), then
the browser's Accept-Language; English when nothing matches. Every customer-facing string
of the portal is a key here, so a missing translation is a test failure, not a blank.
"""

from __future__ import annotations

from flask import Request

LANGUAGES = ("en", "sw")
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "sw": "Kiswahili"}

_UNITS = {
    # unit: (English one, English many, Swahili word; Swahili puts the number after it)
    "week": ("week", "weeks", "wiki"),
    "day": ("day", "days", "siku"),
    "hour": ("hour", "hours", "saa"),
    "min": ("min", "min", "dakika"),
}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "WiFi",
        "choose_plan": "Choose a plan",
        "phone_label": "M-Pesa number",
        "phone_hint": "Like 0712 345 678",
        "phone_bad": "Type a Safaricom number like 0712 345 678.",
        "phone_ok": "We will send the prompt to {phone}.",
        "pay": "Pay with M-Pesa",
        "pay_note": "You will get a prompt on your phone. Enter your M-Pesa PIN to pay.",
        "time_left": "You have {time} left.",
        "top_up": "Top up",
        "top_up_note": "Buy more to add time. You stay connected.",
        "queued_title": "You are in line",
        "queued": "You are in line. The M-Pesa prompt will come to your phone shortly.",
        "queued_place": "You are number {position} in line; the wait is {wait}.",
        "under_a_minute": "less than a minute",
        "about": "about {time}",
        "prompt_title": "Check your phone",
        "prompt": "Check your phone and enter your M-Pesa PIN.",
        "confirming_title": "Confirming…",
        "confirming": "Confirming your payment with M-Pesa…",
        "connecting_title": "Paid",
        "connecting": "Payment received. Connecting you…",
        "connected_title": "Connected",
        "connected": "Paid. You are connected.",
        "bought": "You bought {time}.",
        "left": "Time left",
        "receipt": "M-Pesa receipt",
        "continue": "Continue browsing",
        "connect_now": "Connect now",
        "failed_title": "Payment not completed",
        "try_again": "Try again",
        "other_number": "Use another number",
        "paybill_hint": "Or pay from the M-Pesa menu:",
        "paybill": "Paybill",
        "till": "Buy Goods till",
        "account": "Account",
        "amount_any": "Amount: the price of the plan you want.",
        "menu_title": "Pay from the M-Pesa menu",
        "menu_waiting": "This page notices your payment by itself.",
        "voucher_title": "Have a voucher?",
        "voucher_label": "Voucher code",
        "voucher_button": "Use voucher",
        "voucher_ok": "Voucher accepted. You are connected.",
        "recover_title": "Paid on another device or your phone changed?",
        "recover_note": "Enter the M-Pesa receipt code and the number that paid. The time "
                        "left moves to this device, once.",
        "receipt_label": "M-Pesa receipt code",
        "recover_button": "Move my time here",
        "recover_ok": "{time} moved to this device.",
        "for_devices": "{count} devices",
        "share_title": "Add this device to your plan",
        "share_note": "Your plan is for more than one device? Enter its M-Pesa receipt code "
                      "and the number that paid: this device is online until the plan's "
                      "time ends.",
        "share_button": "Add this device",
        "share_ok": "This device is added to your plan: {time} left ({count} of {allowed} "
                    "devices).",
        "too_many": "Too many attempts. Try again in {minutes} min.",
        "expired_form": "This page had expired. Please try again.",
        "no_device": "We could not see your device. Reconnect to the WiFi and open any "
                     "page again.",
        "open_on_wifi": "Open this page on the WiFi. We know a device by the WiFi it is "
                        "connected to: join the network, then open any web page.",
        "router_busy": "We cannot see which device you are right now. Wait a moment and "
                       "try again.",
        "other_device": "This link was made for another device. Here is the page for yours.",
        "back": "Back",
        "no_purchase": "No such purchase.",
        "noscript": "This page refreshes by itself.",
    },
    "sw": {
        "title": "WiFi",
        "choose_plan": "Chagua kifurushi",
        "phone_label": "Nambari ya M-Pesa",
        "phone_hint": "Kama 0712 345 678",
        "phone_bad": "Andika nambari ya Safaricom kama 0712 345 678.",
        "phone_ok": "Tutatuma ombi kwa {phone}.",
        "pay": "Lipa kwa M-Pesa",
        "pay_note": "Utapokea ombi kwenye simu yako. Weka PIN yako ya M-Pesa kulipa.",
        "time_left": "Umebakiwa na {time}.",
        "top_up": "Ongeza muda",
        "top_up_note": "Nunua zaidi kuongeza muda. Hutakatwa mtandao.",
        "queued_title": "Uko kwenye foleni",
        "queued": "Uko kwenye foleni. Ombi la M-Pesa litakuja kwenye simu yako hivi punde.",
        "queued_place": "Wewe ni nambari {position} kwenye foleni; kusubiri ni {wait}.",
        "under_a_minute": "chini ya dakika moja",
        "about": "takriban {time}",
        "prompt_title": "Angalia simu yako",
        "prompt": "Angalia simu yako na uweke PIN yako ya M-Pesa.",
        "confirming_title": "Tunathibitisha…",
        "confirming": "Tunathibitisha malipo yako na M-Pesa…",
        "connecting_title": "Umelipa",
        "connecting": "Malipo yamepokelewa. Tunakuunganisha…",
        "connected_title": "Umeunganishwa",
        "connected": "Umelipa. Umeunganishwa.",
        "bought": "Umenunua {time}.",
        "left": "Muda uliobaki",
        "receipt": "Risiti ya M-Pesa",
        "continue": "Endelea kuvinjari",
        "connect_now": "Unganisha sasa",
        "failed_title": "Malipo hayakukamilika",
        "try_again": "Jaribu tena",
        "other_number": "Tumia nambari nyingine",
        "paybill_hint": "Au lipa kupitia menyu ya M-Pesa:",
        "paybill": "Paybill",
        "till": "Till ya Buy Goods",
        "account": "Akaunti",
        "amount_any": "Kiasi: bei ya kifurushi unachotaka.",
        "menu_title": "Lipa kupitia menyu ya M-Pesa",
        "menu_waiting": "Ukurasa huu utaona malipo yako wenyewe.",
        "voucher_title": "Una vocha?",
        "voucher_label": "Nambari ya vocha",
        "voucher_button": "Tumia vocha",
        "voucher_ok": "Vocha imekubaliwa. Umeunganishwa.",
        "recover_title": "Ulilipa kwa kifaa kingine au simu yako imebadilika?",
        "recover_note": "Weka nambari ya risiti ya M-Pesa na nambari iliyolipa. Muda uliobaki "
                        "utahamia kifaa hiki, mara moja tu.",
        "receipt_label": "Nambari ya risiti ya M-Pesa",
        "recover_button": "Hamisha muda wangu hapa",
        "recover_ok": "{time} imehamishiwa kifaa hiki.",
        "for_devices": "vifaa {count}",
        "share_title": "Ongeza kifaa hiki kwenye kifurushi chako",
        "share_note": "Kifurushi chako ni cha vifaa zaidi ya kimoja? Weka nambari ya risiti "
                      "ya M-Pesa na nambari iliyolipa: kifaa hiki kitakuwa mtandaoni hadi "
                      "muda wa kifurushi uishe.",
        "share_button": "Ongeza kifaa hiki",
        "share_ok": "Kifaa hiki kimeongezwa kwenye kifurushi chako: zimebaki {time} (vifaa "
                    "{count} kati ya {allowed}).",
        "too_many": "Majaribio mengi mno. Jaribu tena baada ya dakika {minutes}.",
        "expired_form": "Ukurasa huu ulikuwa umepitwa na wakati. Tafadhali jaribu tena.",
        "no_device": "Hatukuona kifaa chako. Unganisha WiFi tena kisha ufungue ukurasa wowote.",
        "open_on_wifi": "Fungua ukurasa huu ukiwa kwenye WiFi. Tunatambua kifaa kwa WiFi "
                        "kilichounganishwa nayo: jiunge na mtandao, kisha ufungue ukurasa "
                        "wowote.",
        "router_busy": "Hatuwezi kuona kifaa chako kwa sasa. Subiri kidogo kisha ujaribu tena.",
        "other_device": "Kiungo hiki kilitengenezwa kwa kifaa kingine. Huu ndio ukurasa wa "
                        "kifaa chako.",
        "back": "Rudi",
        "no_purchase": "Ununuzi huo haupo.",
        "noscript": "Ukurasa huu unajisasisha wenyewe.",
    },
}

# Swahili for the typed errors of the billing core (BillingError.code); English is the
# error's own message. Codes not listed here keep their English words.
ERRORS_SW: dict[str, str] = {
    "invalid_phone": "Andika nambari yako ya M-Pesa kama 0712 345 678.",
    "invalid_mac": "Hatukuona kifaa chako. Unganisha WiFi tena kisha ujaribu tena.",
    "unknown_plan": "Chagua mojawapo ya vifurushi vilivyo kwenye ukurasa.",
    "voucher_unknown": "Nambari hiyo ya vocha si sahihi. Iangalie kisha ujaribu tena.",
    "voucher_used": "Vocha hiyo imeshatumika.",
    "voucher_expired": "Muda wa vocha hiyo umeisha.",
    "recovery_no_match": "Hatukupata malipo yenye risiti hiyo na nambari hiyo ya simu. "
                         "Angalia zote mbili (nambari iko kwenye SMS ya M-Pesa, kama "
                         "RKT1A2B3C4) kisha ujaribu tena.",
    "recovery_used": "Muda wa malipo hayo ulishahamishiwa kifaa; unaweza kuhamishwa mara "
                     "moja tu.",
    "recovery_nothing_left": "Hakuna muda uliobaki wa kuhamisha kutoka kwa malipo hayo.",
    "sharing_full": "Vifaa vyote vinavyoruhusiwa na kifurushi hiki vinatumika tayari.",
    "sharing_over": "Muda wa malipo hayo umeisha, au kifaa hiki kina muda zaidi tayari.",
    "too_many_requests": "Maombi mengi mno ya malipo. Subiri dakika chache kisha ujaribu "
                         "tena, au omba vocha kwa wahudumu.",
    "device_blocked": "Kifaa hiki kimezuiwa hapa. Tafadhali waulize wahudumu.",
}


def error_text(code: str, english: str, lang: str) -> str:
    """A billing error's words in `lang`: the Swahili above, else its English message."""
    if lang == "sw" and code in ERRORS_SW:
        return ERRORS_SW[code]
    return english


def billing_error_text(exc: Exception, lang: str) -> str:
    """An error's own words in `lang` when it has them (a limit says why and when, e.g.
    push_limits.PushLimited), else `error_text`."""
    in_language = getattr(exc, "in_language", None)
    if callable(in_language):
        return str(in_language(lang))
    return error_text(getattr(exc, "code", ""), str(getattr(exc, "message", exc)), lang)


def translate(lang: str, key: str, **values: object) -> str:
    """The sentence `key` in `lang` (English if that language lacks it), filled in."""
    text = MESSAGES.get(lang, {}).get(key) or MESSAGES[DEFAULT][key]
    return text.format(**values) if values else text


def choose_language(request: Request) -> str:
    """`?lang=` beats the `lang` cookie, which beats Accept-Language; else English."""
    for candidate in (request.args.get("lang"), request.form.get("lang"),
                      request.cookies.get("lang")):
        if candidate in LANGUAGES:
            return str(candidate)
    best = request.accept_languages.best_match(LANGUAGES)
    return best or DEFAULT


def _parts(seconds: int) -> list[tuple[int, str]]:
    minutes_total = (int(seconds) + 30) // 60
    if minutes_total and minutes_total % (7 * 24 * 60) == 0:
        return [(minutes_total // (7 * 24 * 60), "week")]
    days, rest = divmod(minutes_total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "min")]
    found = [(number, unit) for number, unit in parts if number]
    return found or [(0, "min")]


def format_duration(seconds: int, lang: str = DEFAULT) -> str:
    """3600 → "1 hour" / "saa 1"; 5400 → "1 hour 30 min" / "saa 1 dakika 30"."""
    words = []
    for number, unit in _parts(seconds):
        one, many, swahili = _UNITS[unit]
        if lang == "sw":
            words.append(f"{swahili} {number}")
        else:
            words.append(f"{number} {one if number == 1 else many}")
    return " ".join(words)


def format_money(amount: int) -> str:
    """KES written as Kenyans write it: "KES 1,000"."""
    return f"KES {int(amount):,}"
