# Astro Runtime 3.3-8 is Apache Airflow 3.3.2, the version requirements.txt pins
# (tests/test_packaging.py keeps the two in step). Runtime 3.3 ships no Python 3.11 image;
# 3.12 is the nearest to the 3.11 the tests run on. The runtime's ONBUILD steps install
# packages.txt and requirements.txt and copy the project; .dockerignore keeps dev code out.
FROM quay.io/astronomer/astro-runtime:3.3-8-python-3.12
