"""Provisioning a real federation: the federation file, the kits, key rotation.

Flower-free library code behind the ``fedsec`` command (``fedsec_cli``):
:mod:`~fedsec.deploy.spec` reads the federation file,
:mod:`~fedsec.deploy.kits` writes the coordinator's and the sites' kits
(:mod:`~fedsec.deploy.layout` says where each file goes),
:mod:`~fedsec.deploy.rotation` rotates or revokes a site's keys. See
``docs/deployment.md`` for the runbook.
"""
