"""Port descriptions embedded in the app: answers "what is port N/proto?"."""
