"""Import of the spatial register from files, and the report of what was refused.

Layers: regions (区划), grids (网格), buildings (楼栋), population (户与人口), facilities
(城市部件). Sources: GeoJSON, zipped Shapefile, GeoPackage, CSV or Excel with lon/lat (or
WKT) columns. The entry point is geodata.importing.services.layer_import; the flow and the
rules are described in docs/import-export.md.
"""
