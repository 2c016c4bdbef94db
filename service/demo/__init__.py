"""`rujukan demo`: a realistic, obviously fictitious data set for trying the service."""
