"""The `travel_desk` app: a coordinator LlmAgent with two specialist sub-agents.

The coordinator transfers flight questions to `flights` and hotel questions to `hotels`;
each specialist has its own tools and transfers back when asked about the other topic.
`book_hotel` saves the booking as an artifact (`booking.txt`), readable over REST.
"""

from __future__ import annotations

from typing import Any

from google.genai import types

from app.agents import LlmAgent
from app.testing.demo_model import DemoModel, choose_model
from app.tools import ToolContext

GEMINI_MODEL = "gemini-2.5-flash"

_KEYWORDS = {
    "flights": ["flight", "fly", "plane", "airline", "airport", "ticket"],
    "hotels": ["hotel", "room", "stay", "night", "accommodation", "book"],
    "search_flights": ["flight", "fly", "plane", "ticket"],
    "find_hotels": ["hotel", "room", "stay", "accommodation"],
    "book_hotel": ["book", "reserve"],
}

_FLIGHTS: dict[str, list[dict[str, Any]]] = {
    "paris": [
        {"flight": "AF 1234", "departs": "08:10", "price_eur": 129},
        {"flight": "BA 306", "departs": "13:45", "price_eur": 154},
    ],
    "tokyo": [{"flight": "JL 46", "departs": "11:25", "price_eur": 812}],
    "new york": [{"flight": "DL 45", "departs": "10:05", "price_eur": 489}],
}
_HOTELS: dict[str, list[dict[str, Any]]] = {
    "paris": [
        {"hotel": "Hotel du Louvre", "stars": 5, "price_eur_per_night": 310},
        {"hotel": "Le Petit Marais", "stars": 3, "price_eur_per_night": 140},
    ],
    "tokyo": [{"hotel": "Shinjuku Garden", "stars": 4, "price_eur_per_night": 180}],
    "new york": [{"hotel": "Hudson Loft", "stars": 4, "price_eur_per_night": 260}],
}


def _model(agent: str) -> Any:
    return choose_model(agent, GEMINI_MODEL, DemoModel(keywords=_KEYWORDS))


def search_flights(destination: str) -> dict[str, Any]:
    """Return today's flights to a destination city."""
    flights = _FLIGHTS.get(destination.strip().lower())
    if not flights:
        return {"error": f"No flights found to {destination}."}
    return {"destination": destination.strip().title(), "flights": flights}


def find_hotels(city: str) -> dict[str, Any]:
    """Return hotels with free rooms in a city."""
    hotels = _HOTELS.get(city.strip().lower())
    if not hotels:
        return {"error": f"No hotels found in {city}."}
    return {"city": city.strip().title(), "hotels": hotels}


async def book_hotel(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """Book the cheapest hotel in a city and save the confirmation as `booking.txt`."""
    hotels = _HOTELS.get(city.strip().lower())
    if not hotels:
        return {"error": f"No hotels to book in {city}."}
    cheapest = min(hotels, key=lambda h: h["price_eur_per_night"])
    text = f"Booking confirmed: {cheapest['hotel']}, {city.strip().title()}.\n"
    version = await tool_context.save_artifact("booking.txt", types.Part(text=text))
    return {"booked": cheapest["hotel"], "artifact": "booking.txt", "version": version}


flights = LlmAgent(
    name="flights",
    description="Finds flights to a destination.",
    model=_model("flights"),
    instruction="You find flights with search_flights. Be brief.",
    tools=[search_flights],
)

hotels = LlmAgent(
    name="hotels",
    description="Finds and books hotels in a city.",
    model=_model("hotels"),
    instruction="You find hotels with find_hotels and book them with book_hotel. Be brief.",
    tools=[find_hotels, book_hotel],
)

root_agent = LlmAgent(
    name="travel_desk",
    description="A travel desk that routes flight and hotel requests to specialists.",
    model=_model("travel_desk"),
    instruction=(
        "You are the front desk of a travel agency. Transfer flight questions to `flights` "
        "and hotel questions to `hotels`; answer greetings yourself."
    ),
    sub_agents=[flights, hotels],
)
