"""Example app `travel_desk`: a coordinator that hands requests to flight and hotel agents."""
