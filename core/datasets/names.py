"""Readable names for the synthetic catalogue: category names and fake item titles."""

from __future__ import annotations

import numpy as np

__all__ = ["category_names", "item_titles"]

_CATEGORIES = [
    ("Books", ["Novel", "Atlas", "Memoir", "Cookbook"]),
    ("Electronics", ["Headphones", "Charger", "Speaker", "Tablet"]),
    ("Home & Kitchen", ["Kettle", "Skillet", "Lamp", "Blender"]),
    ("Sports", ["Racket", "Jersey", "Dumbbell", "Helmet"]),
    ("Fashion", ["Jacket", "Scarf", "Sneakers", "Handbag"]),
    ("Beauty", ["Serum", "Palette", "Lotion", "Perfume"]),
    ("Toys", ["Puzzle", "Robot", "Doll", "Kite"]),
    ("Music", ["Vinyl", "Ukulele", "Album", "Songbook"]),
    ("Movies", ["Box Set", "Documentary", "Thriller", "Comedy"]),
    ("Garden", ["Planter", "Trowel", "Hose", "Seed Kit"]),
    ("Automotive", ["Wiper", "Dash Cam", "Car Mat", "Jump Starter"]),
    ("Grocery", ["Coffee", "Granola", "Olive Oil", "Tea"]),
    ("Health", ["Vitamins", "Yoga Mat", "Thermometer", "Massager"]),
    ("Pets", ["Leash", "Cat Tree", "Chew Toy", "Pet Bed"]),
    ("Office", ["Notebook", "Desk Chair", "Stapler", "Planner"]),
    ("Games", ["Board Game", "Controller", "Card Deck", "Console"]),
    ("Jewelry", ["Necklace", "Ring", "Bracelet", "Earrings"]),
    ("Baby", ["Stroller", "Onesie", "Rattle", "Bottle"]),
    ("Tools", ["Drill", "Wrench", "Toolbox", "Level"]),
    ("Travel", ["Suitcase", "Backpack", "Neck Pillow", "Guidebook"]),
    ("Art", ["Easel", "Canvas", "Brush Set", "Sketchbook"]),
    ("Outdoors", ["Tent", "Lantern", "Hammock", "Compass"]),
    ("Crafts", ["Yarn", "Bead Kit", "Loom", "Sewing Kit"]),
    ("Software", ["Antivirus", "Photo Editor", "Language Course", "Tax Suite"]),
]

_ADJECTIVES = (
    "Amber Bold Bright Calm Classic Cozy Crimson Daring Dusky Eager Electric Emerald Faded Gentle Golden "
    "Grand Humble Indigo Ivory Jolly Keen Lively Lunar Mellow Midnight Misty Noble Olive Polar Quiet Rapid "
    "Rustic Scarlet Silver Smart Solar Swift Tidal Urban Velvet Vivid Wild Witty Young Zesty"
).split()
_BRANDS = (
    "Harbor Summit Maple Aurora Canyon Falcon Meadow Orbit Pioneer Quartz Riverside Sierra Tundra Willow "
    "Beacon Cedar Delta Ember Fjord Granite Horizon Juniper Kestrel Lagoon Monarch Nimbus Oasis Prairie"
).split()


def category_names(n: int) -> list[str]:
    """`n` distinct readable category names (generic "Category k" past the built-in list)."""
    names = [c for c, _ in _CATEGORIES[:n]]
    names += [f"Category {k + 1}" for k in range(len(names), n)]
    return names


def item_titles(primary: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A readable fake title per item, e.g. "Golden Harbor Kettle", from its primary category index.

    Titles repeat only past the number of combinations; repeats get an edition number ("… 2").
    """
    n = len(primary)
    adj = rng.integers(0, len(_ADJECTIVES), n)
    brand = rng.integers(0, len(_BRANDS), n)
    kind = rng.integers(0, 4, n)
    titles = []
    seen: dict[str, int] = {}
    for a, b, k, c in zip(adj, brand, kind, primary, strict=True):
        nouns = _CATEGORIES[c][1] if c < len(_CATEGORIES) else ["Item", "Set", "Pack", "Kit"]
        t = f"{_ADJECTIVES[a]} {_BRANDS[b]} {nouns[k]}"
        seen[t] = seen.get(t, 0) + 1
        titles.append(t if seen[t] == 1 else f"{t} {seen[t]}")
    return titles
