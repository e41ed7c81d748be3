"""The 12 BugNIST classes, in the order used for labels everywhere."""

CLASS_CODES: tuple[str, ...] = (
  "AC",
  "BC",
  "BF",
  "BL",
  "BP",
  "CF",
  "GH",
  "MA",
  "ML",
  "PP",
  "SL",
  "WO",
)

CLASS_NAMES: dict[str, str] = {
  "AC": "brown cricket",
  "BC": "black cricket",
  "BF": "blow fly",
  "BL": "buffalo beetle larva",
  "BP": "blow fly pupa",
  "CF": "curly-wing fly",
  "GH": "grasshopper",
  "MA": "maggot",
  "ML": "mealworm",
  "PP": "green bottle fly pupa",
  "SL": "soldier fly larva",
  "WO": "woodlice",
}
