"""The CDK app's constructs, one module per concern (see docs/design.md#architecture)."""
