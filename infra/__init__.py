"""The CDK app's constructs, one module per concern (see the Architecture section of README.md)."""
