"""The web console (管理控制台): server-rendered pages for branch secretaries and county
departments, on the same services, Principal and scope module as the API."""
