"""The demo district (示例数据): a deterministic, clearly labelled register inside the real
boundary of 重庆市大渡口区. See geodata.demo.loader.demo_load."""
