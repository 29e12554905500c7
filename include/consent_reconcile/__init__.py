"""Reconciliation: read HubSpot back and record, per key, whether it holds the warehouse's intent.

The DAG ``hubspot_consent_reconcile`` wires these steps; each is plain Python, tested without
Airflow (see :mod:`include.consent_reconcile.steps`).
"""
