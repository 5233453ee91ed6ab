-- A second database for the Prefect server beside AlphaLoom's own.
create database prefect;
