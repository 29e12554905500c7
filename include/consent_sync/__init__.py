"""The hubspot-consent-sync pipeline's own logic: everything the DAG calls, testable without Airflow."""
