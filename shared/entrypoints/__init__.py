"""Azure Functions Blueprints, one module per flow: parse the trigger, call the flow, log the summary."""
