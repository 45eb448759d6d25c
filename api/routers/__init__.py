"""HTTP routes, one module per resource. Routers are thin: they call services and shape output."""
