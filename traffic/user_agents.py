"""Real user-agent strings for synthetic traffic, with their device type, OS and browser.

``BROWSERS`` is the human device/OS/browser mix (desktop, mobile, tablet; Chrome, Safari,
Firefox, Edge, Samsung Internet; iOS, Android, Windows, macOS, Linux), each with a traffic weight.
``BOTS`` are known automated clients (crawlers, headless browsers, HTTP libraries) that the
generator's click-fraud bursts use. :func:`describe` classifies any user-agent string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserAgent:
    """One user-agent string and what it says about the client."""

    text: str
    device_type: str  # desktop | mobile | tablet | bot
    os: str  # Windows | macOS | Linux | iOS | Android | unknown
    browser: str
    weight: float = 1.0

    @property
    def is_bot(self) -> bool:
        return self.device_type == "bot"


# Weights approximate a 2024 web mix: about 55 % mobile, 38 % desktop, 7 % tablet.
BROWSERS: tuple[UserAgent, ...] = (
    # Desktop
    UserAgent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop",
        "Windows",
        "Chrome",
        14.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        "desktop",
        "Windows",
        "Edge",
        5.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop",
        "Windows",
        "Firefox",
        3.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop",
        "macOS",
        "Chrome",
        6.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15",
        "desktop",
        "macOS",
        "Safari",
        4.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop",
        "macOS",
        "Firefox",
        1.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        "desktop",
        "macOS",
        "Edge",
        1.0,
    ),
    UserAgent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "desktop",
        "Linux",
        "Chrome",
        2.5,
    ),
    UserAgent(
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "desktop",
        "Linux",
        "Firefox",
        1.5,
    ),
    # Mobile
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Mobile/15E148 Safari/604.1",
        "mobile",
        "iOS",
        "Safari",
        17.0,
    ),
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        "mobile",
        "iOS",
        "Chrome",
        3.0,
    ),
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        "mobile",
        "iOS",
        "Firefox",
        0.5,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Android",
        "Chrome",
        18.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        "mobile",
        "Android",
        "Chrome",
        4.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Android",
        "Samsung Internet",
        8.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        "mobile",
        "Android",
        "Firefox",
        1.0,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
        "mobile",
        "Android",
        "Edge",
        0.5,
    ),
    # Tablet
    UserAgent(
        "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Mobile/15E148 Safari/604.1",
        "tablet",
        "iOS",
        "Safari",
        4.5,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
        "tablet",
        "Android",
        "Samsung Internet",
        1.5,
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "tablet",
        "Android",
        "Chrome",
        1.0,
    ),
)

BOTS: tuple[UserAgent, ...] = (
    UserAgent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.6367.60 Safari/537.36",
        "bot",
        "Linux",
        "HeadlessChrome",
    ),
    UserAgent("python-requests/2.31.0", "bot", "unknown", "python-requests"),
    UserAgent("curl/8.5.0", "bot", "unknown", "curl"),
    UserAgent(
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "bot", "unknown", "AhrefsBot"
    ),
    UserAgent(
        "Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/napoveda/vyhledavani/en/seznambot-crawler/)",
        "bot",
        "unknown",
        "SeznamBot",
    ),
    UserAgent("Scrapy/2.11.1 (+https://scrapy.org)", "bot", "unknown", "Scrapy"),
)

# Lower-case markers of automated clients; a user agent containing one is a bot.
BOT_MARKERS: tuple[str, ...] = (
    "bot",
    "crawler",
    "spider",
    "headlesschrome",
    "python-requests",
    "curl/",
    "wget/",
    "scrapy",
)

_KNOWN = {ua.text: ua for ua in (*BROWSERS, *BOTS)}


def is_bot(user_agent: str | None) -> bool:
    """True for a user agent of a known automated client (marker match, case-insensitive)."""
    if not user_agent:
        return False
    lowered = user_agent.lower()
    return any(marker in lowered for marker in BOT_MARKERS)


def describe(user_agent: str | None) -> UserAgent:
    """Device type, OS and browser of a user-agent string (exact for the strings above, else a heuristic)."""
    if not user_agent:
        return UserAgent("", "unknown", "unknown", "unknown", 0.0)
    known = _KNOWN.get(user_agent)
    if known is not None:
        return known
    text = user_agent
    if is_bot(text):
        return UserAgent(text, "bot", "unknown", "unknown", 0.0)
    if "iPad" in text or ("Android" in text and "Mobile" not in text):
        device = "tablet"
    elif "iPhone" in text or "Mobile" in text:
        device = "mobile"
    else:
        device = "desktop"
    if "iPhone" in text or "iPad" in text:
        os_name = "iOS"
    elif "Android" in text:
        os_name = "Android"
    elif "Windows" in text:
        os_name = "Windows"
    elif "Mac OS X" in text:
        os_name = "macOS"
    elif "Linux" in text or "X11" in text:
        os_name = "Linux"
    else:
        os_name = "unknown"
    for marker, browser in (
        ("SamsungBrowser", "Samsung Internet"),
        ("Edg", "Edge"),
        ("Firefox", "Firefox"),
        ("FxiOS", "Firefox"),
        ("CriOS", "Chrome"),
        ("Chrome", "Chrome"),
        ("Safari", "Safari"),
    ):
        if marker in text:
            return UserAgent(text, device, os_name, browser, 0.0)
    return UserAgent(text, device, os_name, "unknown", 0.0)
