"""The Docker Swarm topology's components: the same roles as on one host, as Swarm services.

components/topology/swarm.py wires them; everything they share with the single-host stack
(settings, renderers, hook scripts, hardening table) is imported, not repeated.
"""
