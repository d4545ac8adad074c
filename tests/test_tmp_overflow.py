from tests.test_preparation_scale import small_apis  # noqa


async def test_overflow(small_apis):
    for api, route in small_apis:
        for limit in (1, 1000, 10000):
            r = await api.get(f"{route}?offset=9223372036854775807&limit={limit}")
            assert r.status in (200, 400), (route, limit, r.status, await r.text())
            r = await api.get(f"{route}?offset=9223372036854775000&limit={limit}")
            assert r.status in (200, 400), (route, limit, r.status, await r.text())
