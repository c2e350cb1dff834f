"""The supervisors 'live page: snapshot reads and the event stream that pushes them."""
