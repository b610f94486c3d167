"""The local stack: JVM artifacts, service configuration and process supervision.

``adclick install`` fills the artifact cache; ``adclick up | down | status`` run the services
under supervisord with their state in ``ADCLICK_HOME``.
"""
