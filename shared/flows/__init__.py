"""The data flows. Each reads like the product's data-flow description; `runner` owns the rest."""
