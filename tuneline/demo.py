"""The demo: a customer-support intent dataset that tuneline generates itself, and the config that trains on it.

Nothing is downloaded: the tickets come from hand-written templates and one seeded generator, so the same seed
always gives the same bytes. The data is hard the way real tickets are, so that a fine-tuned MiniLM scores well
below 1.0 and the retraining gate has something to decide:

* 4 intents, imbalanced: about 34 % shipping, 28 % billing, 22 % technical, 16 % account (:data:`LABEL_SHARES`);
* overlapping vocabulary: billing tickets mention the app and the account, technical ones the checkout and the
  tracking page, account ones invoices and orders; every intent shares greetings, sign-offs and context sentences
  (order numbers, plans, devices, "this is the third time I'm writing about this");
* genuinely ambiguous tickets (about 15 %): written for two intents at once ("my parcel never arrived and I want my
  money back"), labeled with one of the two;
* label noise: exactly one ticket in 25 (:data:`LABEL_NOISE`, 4 %: 38 of the 960 base rows) has a wrong label,
  one of the other intents;
* typos in about a quarter of the tickets (common misspellings; swapped, dropped, doubled or neighbouring keys),
  messages in lower case or without final punctuation;
* varied length, 2 to about 40 words: chat-box fragments ("parcel not delivered??"), single sentences, and
  messages of up to four sentences; 20 or more paraphrase templates per intent.

All files are cut from one *pool* of unique tickets (unique ignoring case and whitespace), shuffled once: the base
file (:func:`write_demo_csv`) is its first 960 tickets, plus a handful of deliberately broken rows (empty text,
missing or unknown label, conflicting and exact duplicates, a malformed CSV record) so that the quarantine shows up
in the demo run. Follow-up batches for the retraining loop (:func:`write_demo_batch`) come from later pages of the
same pool, so batch ``n`` shares no text with the base file or with any other batch, whatever their sizes, and has
the base file's distribution. A shifted batch is dominated by one intent or brings ``cancellation``, an intent the
base file never has (drift and the unseen-label stop).

``write_demo_csv(path, realistic=False)`` writes the keyword data of earlier releases instead (one frame table,
each intent with its own words, no noise): the tests of the flow use it, because a tiny random model learns it in
seconds.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any, Literal, get_args

from tuneline.errors import UserError

#: The intents and their share of the tickets (the order is the label order of the demo config).
LABEL_SHARES: dict[str, float] = {"billing": 0.28, "shipping": 0.34, "technical": 0.22, "account": 0.16}
INTENTS: list[str] = list(LABEL_SHARES)
#: Batch shifts: "one_label" makes DOMINANT_INTENT dominate, "new_label" brings NEW_INTENT, which the base never has.
Shift = Literal["one_label", "new_label"]
SHIFTS: tuple[str, ...] = get_args(Shift)
DOMINANT_INTENT = "shipping"
NEW_INTENT = "cancellation"

BASE_ROWS = 960
LABEL_NOISE = 1 / 25       # every 25th ticket of the pool is mislabeled
AMBIGUOUS_SHARE = 0.16     # tickets written for two intents, labeled with one of them
SHORT_SHARE = 0.14         # one-line fragments
TYPO_SHARE = 0.20          # tickets with one or two typos
MAX_BATCHES = 10           # follow-up batches the pool has pages for
BATCH_PAGE = 1500          # pool tickets reserved for each batch
NEW_INTENT_PAGE = 400      # NEW_INTENT tickets reserved for each batch
DOMINANT_SHARE = 0.6       # share of DOMINANT_INTENT in a "one_label" batch
NEW_INTENT_SHARE = 0.25    # share of NEW_INTENT in a "new_label" batch
MAX_BATCH_ROWS = 1200      # rows every batch number can give (plain or new_label); some give more
MAX_ONE_LABEL_ROWS = 800   # the same for a "one_label" batch (its page runs out of DOMINANT_INTENT tickets first)


@dataclass(frozen=True)
class Ticket:
    """One generated ticket: ``intent`` is its label in the CSV, ``written_as`` the intent(s) its text was written
    for (two for an ambiguous ticket). A ticket whose label is not among them is label noise."""

    text: str
    intent: str
    written_as: tuple[str, ...]

    @property
    def mislabeled(self) -> bool:
        return self.intent not in self.written_as

    @property
    def ambiguous(self) -> bool:
        return len(self.written_as) > 1


# --- what tickets are made of ------------------------------------------------------------------------------------
# {slot} is filled from SLOTS; {Slot} is the same slot with a capital first letter.

SLOTS: dict[str, list[str]] = {
    "item": ["parcel", "package", "order", "delivery", "shipment", "box", "order", "parcel"],
    "product": ["the app", "the mobile app", "the website", "the desktop client", "the Android app", "the iOS app",
                "your site", "the web app", "the app"],
    "plan": ["Premium plan", "Pro subscription", "family plan", "yearly plan", "basic plan", "business plan",
             "Plus membership", "monthly plan"],
    "device": ["my iPhone", "my Pixel", "a Windows laptop", "my Mac", "Chrome", "Firefox", "my iPad",
               "my Samsung phone", "Safari", "my work PC"],
    "error": ["error 500", "a 'something went wrong' message", "a timeout", "a blank white screen",
              "an 'invalid session' error", "error 403", "a spinning wheel forever"],
    "action": ["log in", "pay", "upload a file", "open my orders", "export my data", "search", "save my changes",
               "check out", "open the settings"],
    "button": ["save", "export", "checkout", "submit", "download", "upload", "next", "confirm"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "last week", "yesterday",
            "two weeks ago", "the 3rd", "the 14th", "Saturday"],
    "city": ["Berlin", "Lyon", "Madrid", "Leeds", "Porto", "Graz", "Utrecht", "Milan", "Cork", "Krakow"],
    "country": ["Switzerland", "Norway", "Canada", "the UK", "Iceland", "Australia", "Turkey"],
    "payment": ["PayPal", "Visa", "Mastercard", "direct debit", "Apple Pay", "bank transfer", "Amex"],
    "name": ["Sam", "Priya", "Jonas", "Maria", "Tom", "Aisha", "Lukas", "Chen", "Olivia", "Mehmet"],
    "weeks": ["two weeks", "three weeks", "a month", "ten days", "six weeks"],
    "nth": ["second", "third", "fourth", "fifth"],
}


def _amount(rng: Random) -> str:
    return f"{rng.choice('€$£')}{rng.randint(4, 320)}.{rng.choice(['00', '99', '49', '50', '95'])}"


def _order_no(rng: Random) -> str:
    return rng.choice(["#", "", "no. ", "nr "]) + str(rng.randint(10_000, 9_999_999))


GENERATED = {"amount": _amount, "order_no": _order_no, "n": lambda rng: str(rng.randint(2, 21)),
             "years": lambda rng: str(rng.randint(2, 12)), "code": lambda rng: f"E{rng.randint(100, 999)}"}

TEMPLATES: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my {plan}.", "Why was I charged {amount} this month?",
        "There is a charge of {amount} on my card that I don't recognise.",
        "Can you send me an invoice for order {order_no}?", "I need a VAT invoice with my company name on it.",
        "My refund for order {order_no} still hasn't shown up on my card.",
        "You took {amount} from my account even though I already paid with {payment}.",
        "The promo code didn't apply and I paid full price.", "How do I switch from monthly to yearly billing?",
        "The price of the {plan} went up without any notice, why?",
        "I'd like a refund for the {plan}, I haven't used it at all.",
        "My card was declined but the money is gone from my bank.", "Please update the billing address on my invoices.",
        "When is my next payment due?", "Is there a student discount on the {plan}?",
        "I got a receipt for something I never bought.", "The app charged me {amount} for a purchase I didn't make.",
        "Can I pay by {payment} instead of card?", "Why does my invoice show VAT twice?",
        "I was billed for the {plan} but I'm on the free one.", "The total on my receipt doesn't match what I paid.",
        "Please refund the {amount} you charged me by mistake.", "My bank statement shows two payments of {amount}.",
        "Can I get my money back for order {order_no}?", "The discount from the newsletter was not applied to my bill.",
        "My account was charged {amount} for the {plan} I don't even use.", "The app says I owe {amount} but I paid.",
        "Why do I pay more for delivery than last time?", "Do you charge extra for shipping to {country}?",
    ],
    "shipping": [
        "Where is my {item}? It has not arrived yet.", "My {item} was supposed to arrive on {day}.",
        "Tracking for order {order_no} hasn't updated since {day}.",
        "The courier says delivered but there is nothing at my door.",
        "Can I change the delivery address for order {order_no}?", "The {item} arrived damaged, the box was crushed.",
        "I only got part of my order, two items are missing.", "How long does shipping to {city} usually take?",
        "Do you ship to {country}?", "The driver left my {item} with a neighbour I don't know.",
        "I need a return label for order {order_no}.", "Can you deliver on a Saturday instead?",
        "My {item} is stuck in customs in {city}.", "I received someone else's order.",
        "The {item} went to my old address.", "It's been {n} days and my {item} is still not here.",
        "Can I pick up my {item} at a collection point in {city}?", "The courier never rang, just left a note.",
        "Which carrier do you use for deliveries to {country}?", "My {item} shows 'returned to sender', why?",
        "The wrong size was delivered, how do I send it back?",
        "Is it possible to combine my two orders into one delivery?",
        "I ordered with my work account, can the {item} go to my home address?",
        "The email said my {item} is out for delivery, but nothing came.",
    ],
    "technical": [
        "{Product} keeps crashing when I open it.", "{Product} shows {error} when I try to {action}.",
        "Since the last update {product} is extremely slow.", "Nothing happens when I click the {button} button.",
        "{Product} won't load on {device}.", "I get a blank screen right after the start screen.",
        "The page keeps reloading in a loop.", "Notifications stopped working on {device}.",
        "Syncing between {device} and the website is broken.",
        "The checkout page freezes when I enter my card details.", "The tracking page on your site doesn't load.",
        "Is there an outage right now? {Product} is down.", "Dark mode makes the text unreadable.",
        "Uploading a photo fails every time with {error}.", "The search returns nothing, even for exact names.",
        "{Product} drains my battery since version {n}.", "The export to PDF produces an empty file.",
        "Buttons overlap on {device}, I can't read the menu.", "I get error {code} every time I {action}.",
        "The invoice page of the website is stuck loading.", "{Product} closes itself when I {action}.",
        "The password field doesn't accept paste on {device}.", "The 'pay now' button does nothing.",
        "The refund form on the website gives {error}.", "{Product} shows my order twice in the list.",
        "I can't open the invoice PDF, it says the file is damaged.",
    ],
    "account": [
        "How do I reset my password?", "I forgot my password and the reset email never arrives.",
        "I want to change the email address on my account.", "Please delete my account and all my data.",
        "Someone logged into my account from {city}, it wasn't me.", "How do I turn on two-factor authentication?",
        "I lost my phone and can't get the 2FA code.", "Can I change my username?",
        "My account was locked after too many attempts.", "How do I add a colleague to our team account?",
        "I have two accounts, can you merge them?", "I never signed up but I get emails for an account.",
        "Please update my phone number, I got a new one.", "Where can I download a copy of my personal data?",
        "How do I remove my old email from my profile?", "Can I transfer my account to my colleague {name}?",
        "I want to see my invoices but I no longer have access to the account email.",
        "How do I make {name} an admin of our account?", "Can I change the name on my profile?",
        "I'd like to sign in with Google instead of a password.", "My account says 'suspended', what did I do?",
        "How do I log out of all devices at once?", "I can't find my order history since I changed my email.",
        "Can my team members see my payment details?", "I want a second login for my partner on the same account.",
    ],
}

#: Tickets written for two intents at once: either label is defensible.
AMBIGUOUS: dict[tuple[str, str], list[str]] = {
    ("billing", "shipping"): [
        "My {item} never arrived and I want my money back.",
        "I paid for express shipping but it took {n} days, refund the shipping fee please.",
        "I returned the {item} {weeks} ago and still no refund.", "You charged me for an order that was never shipped.",
        "I was charged for shipping on order {order_no} although it was supposed to be free.",
    ],
    ("technical", "account"): [
        "I keep getting logged out of {product}.",
        "The login page says my password is wrong even though I just reset it.",
        "The 2FA code never arrives by SMS.", "I can't sign in on {device}, it just spins.",
        "{Product} says my session expired every few minutes.",
    ],
    ("billing", "account"): [
        "I was charged again after I closed my account.", "How do I change the card saved in my account?",
        "Someone used my account to buy things with my card.", "I want to downgrade my {plan}.",
    ],
    ("shipping", "technical"): [
        "The tracking link in your email gives {error}.", "The app says my {item} was delivered but it isn't here.",
        "I can't change the delivery date in the app, the button does nothing.",
    ],
    ("billing", "technical"): [
        "The app took my payment but the order shows as failed.",
        "Checkout gives {error} and I don't know if I was charged.",
        "I paid with {payment} and the page just hung, was the money taken?",
    ],
    ("shipping", "account"): [
        "My new address won't save in my profile, so my {item} goes to the old one.",
        "How do I change the default delivery address on my account?",
    ],
}

#: One-line fragments, the way people type into a chat box.
SHORT: dict[str, list[str]] = {
    "billing": ["refund for {order_no}?", "double charge", "invoice missing", "wrong amount on my bill",
                "charged twice", "need a receipt for {order_no}", "{amount} charged, why", "refund still not received",
                "promo code not working", "overcharged again", "charged {amount} twice", "where is my refund",
                "invoice for {order_no} pls", "{plan} price went up?", "money back for {order_no}",
                "wrong VAT on invoice", "charged after free trial", "{payment} payment failed but charged"],
    "shipping": ["where is my {item}", "{item} not delivered", "tracking not updating", "wrong item received",
                 "{item} late again", "{item} {order_no} missing", "delivery to {city}?", "damaged {item}",
                 "still waiting for my {item}", "return label please", "{item} stuck in {city}",
                 "no tracking for {order_no}", "{item} lost?", "ship to {country}?", "{item} says delivered, isn't",
                 "change address for {order_no}", "half my order missing", "{item} arrived broken"],
    "technical": ["app crashes", "{error} on {device}", "site down?", "export broken", "app keeps freezing",
                  "can't {action}, {error}", "bug in search", "page won't load", "app slow since update",
                  "upload fails", "error {code}", "{product} not loading", "{button} button broken",
                  "crash on {device}", "blank screen on {device}", "{product} down again", "notifications broken"],
    "account": ["password reset", "locked out", "change my email", "delete my account", "2fa not working",
                "forgot password", "can't change username", "add user to team", "account hacked?",
                "reset link expired", "new phone, lost 2fa", "login from {city} wasn't me", "merge my 2 accounts",
                "change account owner to {name}", "verify my email", "remove {name} from team"],
}
#: How chat-box fragments start and end.
SHORT_OPENERS = ["hi ", "hello ", "pls ", "urgent: ", "hey, ", "help: ", "Hi - "]
SHORT_CLOSERS = ["?", "??", "!", "!!", " asap", " help", " pls", " thx", " again", " - {name}", " ({order_no})",
                 " today please", "..."]

#: Sentences any ticket may carry: they make tickets longer and share words across intents.
CONTEXT: list[str] = [
    "I've been a customer for {years} years.", "This is the {nth} time I'm writing about this.",
    "I already contacted you on {day} but got no reply.", "My order number is {order_no}.",
    "I'm on the {plan}.", "I'm using {device}.", "Nobody answered the phone.", "I'm really disappointed.",
    "It's urgent, I need this sorted today.", "My colleague {name} has the same problem.",
]
DETAILS: dict[str, list[str]] = {
    "billing": ["The amount was {amount}.", "I pay by {payment}.", "My bank shows the charge twice.",
                "The invoice number is INV-{n}{code}."],
    "shipping": ["I live in {city}.", "It's been {n} days.", "The tracking number ends in {n}{code}.",
                 "It was a gift and now it's too late."],
    "technical": ["I already tried reinstalling.", "I cleared the cache, no change.", "Screenshot attached.",
                  "It started after the update on {day}."],
    "account": ["My username is {name}{n}.", "I no longer have access to my old email.",
                "I use the same login on the website.", "I set up the account {years} years ago."],
    NEW_INTENT: ["My renewal date is {day}.", "I'm moving abroad.", "I found a cheaper option."],
}
OPENERS = ["Hi,", "Hello,", "Hi there,", "Good morning,", "Dear support,", "Hey,", "Hello team,", "Hi {name} here."]
CLOSERS = ["Thanks!", "Thank you.", "Thanks in advance.", "Regards, {name}", "Cheers", "Please help.",
           "Please advise.", "This is urgent.", "Any update would be appreciated.", "thx"]

#: Templates of the intent the base data never has; every one says "cancel", which no base template does.
NEW_INTENT_TEMPLATES = [
    "Please cancel my {plan}.", "How do I cancel my subscription before the next renewal?",
    "I want to cancel order {order_no} before it ships.", "Cancel my membership please.",
    "I cancelled on {day} but still got the renewal email.", "Can I cancel the {plan} and keep my data?",
    "Where is the cancel button for my subscription?", "I'd like to cancel the yearly renewal of my {plan}.",
    "cancel subscription", "cancel order {order_no} pls", "how to cancel?",
    "If I cancel now, do I get the rest of the month back?",
]

MISSPELLINGS = {"receive": "recieve", "received": "recieved", "address": "adress", "password": "pasword",
                "account": "acount", "delivery": "delivary", "invoice": "invoce", "arrived": "arived",
                "refund": "refnud", "package": "pakage", "necessary": "neccessary", "already": "allready",
                "charged": "chargd", "tracking": "traking", "subscription": "subscribtion", "update": "udpate",
                "please": "plese", "because": "becuase", "delivered": "deliverd"}
NEIGHBOURS = {row[i]: row[i + 1] if i + 1 < len(row) else row[i - 1]  # the key to the right (left at the end)
              for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm") for i in range(len(row))}


# --- the generator -----------------------------------------------------------------------------------------------

def _fill(template: str, rng: Random) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        filled = GENERATED[name.lower()](rng) if name.lower() in GENERATED else rng.choice(SLOTS[name.lower()])
        return filled[:1].upper() + filled[1:] if name[:1].isupper() else filled

    return re.sub(r"\{(\w+)\}", value, template)


def _typo(text: str, rng: Random) -> str:
    """One misspelt word: a common misspelling where there is one, else a slip of the finger."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w.strip(".,?!'")) >= 4 and "cancel" not in w.lower()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    core = word.rstrip(".,?!")
    tail, lower = word[len(core):], core.lower()
    if lower in MISSPELLINGS and rng.random() < 0.6:
        new = MISSPELLINGS[lower]
        new = new[:1].upper() + new[1:] if core[:1].isupper() else new
    else:
        j = rng.randrange(1, len(core) - 1)
        operation = rng.choice(["swap", "drop", "double", "neighbour"])
        if operation == "swap":
            new = core[:j] + core[j + 1] + core[j] + core[j + 2:]
        elif operation == "drop":
            new = core[:j] + core[j + 1:]
        elif operation == "double":
            new = core[:j] + core[j] + core[j:]
        else:
            new = core[:j] + NEIGHBOURS.get(core[j].lower(), core[j]) + core[j + 1:]
    words[i] = new + tail
    return " ".join(words)


def _style(text: str, rng: Random, short: bool) -> str:
    """How people actually type: typos, no capitals, no final punctuation, chat abbreviations."""
    if rng.random() < TYPO_SHARE:
        text = _typo(text, rng)
        if rng.random() < 0.3:
            text = _typo(text, rng)
    if rng.random() < (0.5 if short else 0.15):
        text = text.lower()
    if rng.random() < 0.1:
        text = text.rstrip(".!")
    if rng.random() < 0.1:
        text = re.sub(r"\bplease\b", "pls", text, flags=re.IGNORECASE)
    if short and rng.random() < 0.3:
        text = rng.choice(SHORT_OPENERS) + text
    if short and rng.random() < 0.5:
        text += _fill(rng.choice(SHORT_CLOSERS), rng)
    return text


def _compose(core: str, intent: str, rng: Random) -> str:
    """A core sentence with, for some tickets, a greeting, a sign-off and one to two context or detail sentences."""
    extra = rng.choices([0, 1, 2], weights=[0.55, 0.35, 0.10])[0]
    details = DETAILS.get(intent, [])
    sentences = [core]
    for _ in range(extra):
        pool = CONTEXT if rng.random() < 0.55 or not details else details
        sentence = _fill(rng.choice(pool), rng)
        if rng.random() < 0.5:
            sentences.insert(0, sentence)
        else:
            sentences.append(sentence)
    if rng.random() < 0.35:
        sentences.insert(0, _fill(rng.choice(OPENERS), rng))
    if rng.random() < 0.4:
        sentences.append(_fill(rng.choice(CLOSERS), rng))
    return " ".join(sentences)


def _draw(rng: Random, intents: list[str], shares: list[float]) -> tuple[str, str, tuple[str, ...]]:
    """One ticket text, the intent it was drawn for and the intent(s) it was written as."""
    intent = rng.choices(intents, weights=shares)[0]
    pairs = [pair for pair in AMBIGUOUS if intent in pair]
    if intent == NEW_INTENT:
        core, written_as = _fill(rng.choice(NEW_INTENT_TEMPLATES), rng), (intent,)
        short = len(core.split()) <= 4
    elif pairs and rng.random() < AMBIGUOUS_SHARE:
        pair = rng.choice(pairs)
        core, written_as, short = _fill(rng.choice(AMBIGUOUS[pair]), rng), pair, False
    elif rng.random() < SHORT_SHARE:
        core, written_as, short = _fill(rng.choice(SHORT[intent]), rng), (intent,), True
    else:
        core, written_as, short = _fill(rng.choice(TEMPLATES[intent]), rng), (intent,), False
    text = core if short else _compose(core, intent, rng)
    return _style(text, rng, short), intent, written_as


def _key(text: str) -> str:
    """What makes two texts the same ticket: case and whitespace do not count."""
    return " ".join(text.casefold().split())


@lru_cache(maxsize=4)
def _pool(seed: int, new_intent: bool = False) -> tuple[Ticket, ...]:
    """Every ticket the demo files are cut from: unique texts in a seeded random order, every 25th relabeled.

    Drawing unique texts uses up the most likely ones (short, plain messages) as the draw goes on; shuffling the
    whole pool before cutting it into the base file and the batch pages gives every file the same distribution.
    ``new_intent``: the pool of :data:`NEW_INTENT` tickets (no label noise; they all say "cancel").
    """
    intents, shares = ([NEW_INTENT], [1.0]) if new_intent else (INTENTS, list(LABEL_SHARES.values()))
    size = MAX_BATCHES * NEW_INTENT_PAGE if new_intent else BASE_ROWS + MAX_BATCHES * BATCH_PAGE
    rng = Random(f"tuneline-demo:{seed}:{NEW_INTENT if new_intent else 'base'}")
    seen: set[str] = set()
    drawn: list[tuple[str, str, tuple[str, ...]]] = []
    for _ in range(20 * size):
        text, intent, written_as = _draw(rng, intents, shares)
        if _key(text) not in seen:
            seen.add(_key(text))
            drawn.append((text, intent, written_as))
            if len(drawn) == size:
                break
    else:
        raise RuntimeError(f"the templates gave only {len(drawn)} unique tickets of the {size} needed")
    rng.shuffle(drawn)
    every = round(1 / LABEL_NOISE)
    tickets = []
    for index, (text, intent, written_as) in enumerate(drawn):
        if not new_intent and index % every == every // 2:  # label noise
            intent = rng.choice([other for other in INTENTS if other not in written_as])
        tickets.append(Ticket(text, intent, written_as))
    return tuple(tickets)


def demo_tickets(seed: int = 7) -> list[Ticket]:
    """The base file's clean tickets (:func:`demo_rows` shuffles them and adds the broken rows)."""
    return list(_pool(seed)[:BASE_ROWS])


# --- the keyword variant: for tests of the flow on a tiny random model, not for the demo --------------------------

KEYWORD_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "billing": {
        "subject": ["my invoice", "the last bill", "my credit card charge", "the monthly payment", "my refund",
                    "the subscription fee", "a double charge", "the VAT on my receipt", "my payment method",
                    "the promo code discount"],
        "frame": ["I was charged twice for {s}, can you fix it?", "Why is {s} higher than usual?",
                  "Please send me a copy of {s}.", "I need help understanding {s}.",
                  "There is a mistake on {s}, I want my money back.", "How do I update {s}?",
                  "Can you explain {s} to me?", "When will {s} be processed?"],
    },
    "shipping": {
        "subject": ["my parcel", "the delivery", "my order", "the package", "the courier", "the tracking number",
                    "the shipment to Berlin", "my express delivery", "the return label", "the box"],
        "frame": ["Where is {s}? It has not arrived yet.", "{S} was supposed to arrive on Monday.",
                  "Can I change the address for {s}?", "{S} arrived damaged.", "How long does {s} usually take?",
                  "The status of {s} has not changed for a week.", "Can you speed up {s}?",
                  "I never received {s}."],
    },
    "technical": {
        "subject": ["the app", "the login page", "the website", "the mobile app on Android", "the sync feature",
                    "the export button", "the desktop client", "the search function", "the update", "the dashboard"],
        "frame": ["{S} keeps crashing when I open it.", "{S} shows an error code 500.",
                  "{S} is extremely slow since yesterday.", "I cannot get {s} to load at all.",
                  "After the last release {s} freezes.", "{S} does not work on my laptop.",
                  "Is there a bug in {s}? Nothing happens when I click.", "{S} gives me a blank screen."],
    },
    "account": {
        "subject": ["my password", "my email address", "my username", "my account", "two-factor authentication",
                    "my profile", "my account settings", "the account of my team", "my phone number",
                    "my membership"],
        "frame": ["How do I reset {s}?", "I want to change {s}.", "I forgot {s} and cannot sign in.",
                  "Please delete {s} permanently.", "Can I transfer {s} to a colleague?",
                  "Someone else may have access to {s}.", "How can I verify {s}?", "I would like to close {s}."],
    },
}
KEYWORD_OPENERS = ["", "", "", "Hi, ", "Hello, ", "Hey there. ", "Good morning, ", "Sorry to bother you, "]
KEYWORD_CLOSERS = ["", "", "", " Thanks!", " Thank you.", " Regards, Sam", " Please help.", " Cheers."]


def _keyword_rows(seed: int) -> list[dict[str, Any]]:
    """240 tickets per intent from one frame table, each intent with its own words, shuffled (the demo data of
    earlier releases, byte for byte): a tiny random model learns them in seconds."""
    rng = Random(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for intent, spec in KEYWORD_TEMPLATES.items():
        made = 0
        while made < BASE_ROWS // len(KEYWORD_TEMPLATES):
            subject = rng.choice(spec["subject"])
            body = rng.choice(spec["frame"]).format(s=subject, S=subject[:1].upper() + subject[1:])
            text = f"{rng.choice(KEYWORD_OPENERS)}{body}{rng.choice(KEYWORD_CLOSERS)}".strip()
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "intent": intent})
                made += 1
    rng.shuffle(rows)
    return rows


# --- the files -----------------------------------------------------------------------------------------------------

def demo_rows(seed: int = 7, realistic: bool = True) -> list[dict[str, Any]]:
    """The clean rows (unique texts) followed by the deliberately broken ones. ``realistic=False``: the keyword
    variant, which a tiny random test model learns in seconds (for tests of the flow, not of the model)."""
    if realistic:
        rows: list[dict[str, Any]] = [{"text": t.text, "intent": t.intent} for t in demo_tickets(seed)]
        Random(seed).shuffle(rows)
    else:
        rows = _keyword_rows(seed)
    conflicting = rows[0]["text"]
    other = next(i for i in INTENTS if i != rows[0]["intent"])
    rows += [
        {"text": "", "intent": "billing"},                       # empty text
        {"text": "   ", "intent": "shipping"},                   # whitespace only
        {"text": "My order is late again.", "intent": None},     # missing label
        {"text": "Do you sell gift cards?", "intent": "sales"},   # label outside the label set
        {"text": conflicting, "intent": other},                  # same text, different label
        dict(rows[1]),                                           # exact duplicate
        dict(rows[2]),                                           # exact duplicate
    ]
    return rows


def write_demo_csv(path: Path, seed: int = 7, realistic: bool = True) -> Path:
    """Write the demo CSV (plus one malformed record with an extra field) and return its path.

    ``realistic=False``: the keyword variant for tests on a tiny model (see :func:`demo_rows`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for row in demo_rows(seed, realistic):
            writer.writerow([row["text"], row["intent"] if row["intent"] is not None else ""])
        writer.writerow(["The app crashed", "technical", "unexpected third field"])
    return path


def _quotas(rows: int, shift: Shift | None) -> dict[str, int]:
    """Rows per intent: the base shares, or the shifted ones; rounded so that they add up to ``rows``."""
    shares = dict(LABEL_SHARES)
    if shift == "new_label":
        shares = {intent: share * (1 - NEW_INTENT_SHARE) for intent, share in shares.items()}
        shares[NEW_INTENT] = NEW_INTENT_SHARE
    elif shift == "one_label":
        rest = 1 - shares[DOMINANT_INTENT]
        shares = {intent: DOMINANT_SHARE if intent == DOMINANT_INTENT else share / rest * (1 - DOMINANT_SHARE)
                  for intent, share in shares.items()}
    quotas = {intent: int(rows * share) for intent, share in shares.items()}
    by_remainder = sorted(shares, key=lambda intent: rows * shares[intent] - quotas[intent], reverse=True)
    for intent in by_remainder[:rows - sum(quotas.values())]:
        quotas[intent] += 1
    return quotas


def batch_tickets(number: int, rows: int = 300, shift: Shift | None = None, seed: int = 7) -> list[Ticket]:
    """The tickets of follow-up batch ``number`` (1 to :data:`MAX_BATCHES`), shuffled.

    Batch ``n`` is cut from its own page of the pool, so batches never share a text with the base file or with
    each other, whatever their sizes, and have the base file's distribution. ``shift=None``: the intents in the
    base shares. ``shift="one_label"``: 60 % shipping (a courier strike; about 34 % in the base file).
    ``shift="new_label"``: a quarter of the batch is ``cancellation``, an intent the base file never has, the rest
    in the base shares.
    """
    if not 1 <= number <= MAX_BATCHES:
        raise UserError(f"batch number must be between 1 and {MAX_BATCHES}, got {number} (-n/--number)")
    if rows < 1:
        raise UserError(f"rows must be 1 or more, got {rows} (--rows)")
    if shift not in (None, *SHIFTS):
        raise UserError(f"shift must be None, {' or '.join(map(repr, SHIFTS))}, got {shift!r}")
    page = _pool(seed)[BASE_ROWS + (number - 1) * BATCH_PAGE:BASE_ROWS + number * BATCH_PAGE]
    new_page = _pool(seed, new_intent=True)[(number - 1) * NEW_INTENT_PAGE:number * NEW_INTENT_PAGE]
    chosen: list[Ticket] = []
    for intent, quota in _quotas(rows, shift).items():
        available = [t for t in (new_page if intent == NEW_INTENT else page) if t.intent == intent]
        if len(available) < quota:
            most = MAX_ONE_LABEL_ROWS if shift == "one_label" else MAX_BATCH_ROWS
            raise UserError(f"rows={rows} with shift={shift!r} needs {quota} '{intent}' tickets, batch {number} "
                            f"has {len(available)}: ask for fewer rows (up to {most} always fit)")
        chosen += available[:quota]
    Random(f"tuneline-demo-batch:{seed}:{number}:{shift}").shuffle(chosen)
    return chosen


def write_demo_batch(path: Path, number: int, rows: int = 300, shift: Shift | None = None, seed: int = 7) -> Path:
    """Write follow-up batch ``number`` for the retraining loop (the demo CSV's columns, no broken rows) and return
    its path. :func:`batch_tickets` says what ``shift`` does.

    ``path`` may be in a landing folder, beside batches that already landed: the arguments are checked (the tickets
    drawn) before anything is opened, and the rows are written to a hidden temporary file in the same folder that is
    renamed over ``path`` at the end. A failed call therefore leaves an existing file as it was, and no reader (the
    landing scanner ignores hidden ``.tmp`` files) ever sees a half-written batch. Write the ``.done`` marker after
    this returns."""
    tickets = batch_tickets(number, rows, shift, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "intent"])
            writer.writerows([t.text, t.intent] for t in tickets)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def demo_config_dict(data_file: Path) -> dict[str, Any]:
    """The demo's config: MiniLM, full fine-tuning, 2 epochs, label set given explicitly (so 'sales' is rejected).

    The gate's floor is 0.75 macro-F1: the fine-tuned model scores about 0.85 on this data, the zero-shot baseline
    about 0.56."""
    return {
        "task": "classification",
        "data": {"path": str(data_file), "text_column": "text", "label_column": "intent",
                 "labels": list(INTENTS), "max_bad_fraction": 0.05},
        "model": {"base": "minilm", "strategy": "full"},
        "tokenize": {"max_length": 64},
        "train": {"epochs": 2, "batch_size": 16, "logging_steps": 10},  # the rate: per strategy (full 5e-5)
        "tracking": {"experiment": "tuneline-demo", "registered_model": "tuneline-demo-intents"},
        "gate": {"min_metric": 0.75, "tolerance": 0.01},
    }
