return cjson.encode({1,2,3})
return cjson.encode({})
return cjson.encode({[1]=1,[2]=2,x=3})
return cjson.encode({a={b={c={}}}})
return cjson.encode("a/b\"c\\d\1\8\9\10\12\13\31\127\128\255")
return cjson.encode(0.1)
return cjson.encode(-0.0)
return cjson.encode(1/3)
return cjson.encode(2^53)
return cjson.encode(1e-5)
return cjson.encode(123456789012345)
return cjson.encode(1e300)
return cjson.encode({[10]=1})
return cjson.encode({[11]=1})
return cjson.encode({1,2,3,4,5,[11]=11})
return cjson.encode({[0]=1})
return cjson.encode({[1.5]=1})
return cjson.encode({[-1]=1})
return cjson.encode({[2^40]=1})
return cjson.encode({[true]=1})
return cjson.encode(tostring)
return cjson.encode(0/0)
return cjson.encode(1/0)
return cjson.encode({[1/0]=1})
return cjson.encode()
return cjson.encode(1, 2)
local t = {} for i = 1, 1000 do t = {t} end return cjson.encode(t)
local a = {} a[1] = a return cjson.encode(a)
cjson.encode_max_depth(2) local r = {pcall(cjson.encode, {{{1}}})} cjson.encode_max_depth(1000) return r[2]
return cjson.encode_max_depth(0)
return {cjson.encode_sparse_array()}
return cjson.encode_sparse_array(nil, -1)
cjson.encode_sparse_array(true) local r = cjson.encode({[11]=1}) cjson.encode_sparse_array(false) return r
cjson.encode_sparse_array(false, 0, 3) local r = #cjson.encode({[1000]=1}) cjson.encode_sparse_array(false, 2, 10) return r
cjson.encode_invalid_numbers(true) local r = cjson.encode({0/0, 1/0, -1/0}) cjson.encode_invalid_numbers(false) return r
cjson.encode_invalid_numbers('null') local r = cjson.encode({0/0, 1/0, 2}) cjson.encode_invalid_numbers(false) return r
return cjson.encode_invalid_numbers('maybe')
return cjson.encode_invalid_numbers(1, 2)
return tostring(cjson.encode_invalid_numbers())
return tostring(cjson.encode_keep_buffer())
return cjson.encode_number_precision()
return cjson.encode_number_precision(15)
return cjson._NAME .. cjson._VERSION
return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")
return cjson.decode('"a\\u00e9\\n\\/"')
return cjson.decode('"\\ud83d\\ude00"')
return tostring(cjson.decode('[true,false,null]')[3] == cjson.null)
return cjson.decode(' \t\r\n 12 ')
return cjson.decode(123)
return cjson.decode('0x10')
return cjson.decode('+5')
return cjson.decode('012')
return tostring(cjson.decode('-Infinity'))
return tostring(cjson.decode('nan'))
return tostring(cjson.decode('1e400'))
return cjson.decode('12\0garbage')
return cjson.decode('1\0garbage')
return cjson.decode('x')
return cjson.decode('')
return cjson.decode('[1,2')
return cjson.decode('[1,]')
return cjson.decode('{"a" 1}')
return cjson.decode('{1:2}')
return cjson.decode('{"a":1 "b"}')
return cjson.decode('[] x')
return cjson.decode('truex')
return cjson.decode('nul')
return cjson.decode('"abc')
return cjson.decode('"a\\qb"')
return cjson.decode('"\\u12g4"')
return cjson.decode('"\\udc00"')
return cjson.decode('-')
return cjson.decode('[1,2]', 3)
return cjson.decode({})
return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))
cjson.decode_max_depth(1) local ok, e = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}') cjson.decode_max_depth(1000) return e
cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '0x10') cjson.decode_invalid_numbers(true) return e
cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, 'inf') cjson.decode_invalid_numbers(true) return e
cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '[1, 012]') cjson.decode_invalid_numbers(true) return e
local ok, e = pcall(cjson.decode, 'x') return e
local ok, e = pcall(cjson.decode, 'x', 1) return e
return cmsgpack.pack(0.1)
return cmsgpack.pack(-1099511627776)
return cmsgpack.pack(0, 127, 128, 255, 256, 65536, 2^32, -1, -32, -33, -129, -32769, -2^31, -2^31-1, -2^63, 2^63, 0.5, -0.0, 1/0, 1e300)
return cmsgpack.pack(true, false, nil, 'abc', {}, {1,2}, {[2]=1}, {a=1}, tostring)
return cmsgpack.pack(string.rep('a', 32)):sub(1,3)
return cmsgpack.pack()
local t = {} for i = 1, 20 do t = {t} end return cmsgpack.pack(t)
local a = {x=nil,y=5} local b = {x=a} a['x'] = b return cmsgpack.pack(a)
return {cmsgpack.unpack(cmsgpack.pack(1, 'a', true))}
return select('#', cmsgpack.unpack(''))
return {cmsgpack.unpack_one('')}
return {cmsgpack.unpack_one(cmsgpack.pack(7, 8))}
return {cmsgpack.unpack_one(cmsgpack.pack(7, 8), 1)}
return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 2)}
return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 0)}
return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 0, 1)}
return cmsgpack.unpack_one('abc', 4)
return cmsgpack.unpack_limit('abc', -1, 1)
return cmsgpack.unpack_limit('abc')
return cmsgpack.unpack()
return cmsgpack.unpack('\204\128')
return cmsgpack.unpack('\207\255\255\255\255\255\255\255\255')
return cmsgpack.unpack('\211\255\255\255\255\255\255\255\254')
return tostring(cmsgpack.unpack('\202\63\192\0\0'))
return cmsgpack.unpack('\204')
return cmsgpack.unpack('\193')
return cmsgpack.unpack('\196\1a')
return cmsgpack.unpack('\129\192\1')
local ok, e = pcall(cmsgpack.unpack, '\129\192\1') return e
return cmsgpack.unpack('\129\203\127\248\0\0\0\0\0\0\1')
return select('#', cmsgpack.unpack(string.rep('\1', 7999)))
return select('#', cmsgpack.unpack(string.rep('\1', 8000)))
return #cmsgpack.pack(string.rep('x', 4001):byte(1, -1))
return #cmsgpack.pack(string.rep('x', 4000):byte(1, -1))
return cmsgpack._NAME .. cmsgpack._VERSION
return bit.tohex(65535, -2147483648)
return {bit.tobit(1), bit.band(1), bit.bxor(1,2), bit.bor(1,2,4,8,16,32,64,128)}
return {bit.tobit(0xffffffff), bit.tobit(2^32+5), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit('0x10')}
return {bit.bnot(0), bit.lshift(1, 31), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 12), bit.ror(0x12345678, 12), bit.bswap(0x12345678)}
return {bit.tohex(1), bit.tohex(-1), bit.tohex(0x12345678, 4), bit.tohex(0xabcd, -4), bit.tohex(0xabcd, 20), bit.tohex(0xabcd, 0)}
return bit.tobit()
return bit.band(1, 'x')
return bit.tohex(1, nil)
return bit.lshift({}, 1)
local ok, e = pcall(bit.tobit) return e
local f = bit.tobit return f()
return tostring(bit.tobit(0/0))
return struct.pack('b', -1) .. struct.pack('B', 256) .. struct.pack('<h', 1) .. struct.pack('>h', 1)
return struct.pack('>i', -2) .. struct.pack('>l', 1) .. struct.pack('>L', 2^63) .. struct.pack('<T', 5)
return struct.pack('>i3', 0x010203) .. struct.pack('>I1', 300) .. struct.pack('>i10', -1) .. struct.pack('<i10', -1)
return struct.pack('>i', 1.9) .. struct.pack('>i', -1.9) .. struct.pack('>i', '12')
return struct.pack('>f', 1.5) .. struct.pack('<f', 1.5) .. struct.pack('>d', -2)
return struct.pack('c3', 'abcdef') .. struct.pack('c0', 'abc') .. struct.pack('c0', 12) .. struct.pack('s', 'ab')
return struct.pack('bxb', 1, 2) .. struct.pack('> b i', 1, 2) .. struct.pack('!4 b i', 1, 2) .. struct.pack('!2 b i', 1, 2)
return struct.pack('! b d', 1, 2) .. struct.pack('!8 b c2 h', 1, 'xy', 3)
return struct.pack('>L', 2^64) .. struct.pack('>L', -1) .. struct.pack('>l', -2^63)
return struct.pack('i')
return struct.pack('b', {})
return struct.pack('c5', 'ab')
return struct.pack('s', nil)
return struct.pack('z', 1)
return struct.pack('b2', 1)
return struct.pack('i33', 1)
return struct.pack('c99999999999', 'a')
return struct.pack('!3')
return struct.pack('!0')
return struct.pack(nil)
return {struct.unpack('>h', '\255\254')}
return {struct.unpack('<i', '\1\0\0\128')}
return {struct.unpack('<I', '\1\0\0\128')}
return {struct.unpack('>i3', '\255\255\255')}
return {struct.unpack('bxB', '\255\0\255')}
return {struct.unpack('c2', 'abcd', 2)}
return {struct.unpack('s s', 'ab\0c\0')}
return {struct.unpack('b c0', '\3abcd')}
return {struct.unpack('c1 c0', '2abcd')}
return {struct.unpack('!4 b i', '\1\0\0\0\2\0\0\0')}
return {struct.unpack('', 'abc', 3)}
return {struct.unpack('', 'abc', -5)}
return {struct.unpack('<i16', string.rep('\255', 16))}
return {tostring(struct.unpack('<I16', string.rep('\255', 8) .. string.rep('\0', 8)))}
return {tostring(struct.unpack('>f', '\63\192\0\0'))}
return struct.unpack('i', 'abc')
return struct.unpack('b', 'abc', 4)
return struct.unpack('b', 'abc', -1)
return struct.unpack('b', 'abc', 0)
return struct.unpack('c0', 'abc')
return struct.unpack('c1 c0', 'abc')
return struct.unpack('b c0', '\9abc')
return struct.unpack('s', 'abc')
return struct.unpack('y', 'abc')
return struct.unpack('b')
return struct.unpack('b', 'a', 'x')
return select('#', struct.unpack(string.rep('b', 7997), string.rep('a', 7997)))
return select('#', struct.unpack(string.rep('b', 7998), string.rep('a', 7998)))
return {struct.size(''), struct.size('b'), struct.size('bhilTfd'), struct.size('!bhilTfd'), struct.size('!4 b d'), struct.size('b i3 c7 x'), struct.size('zq'), struct.size('i32')}
return struct.size('bs')
return struct.size('c0')
return struct.size('#')
return select('#', cmsgpack.unpack(string.rep('\161a', 7999)))
return select('#', cmsgpack.unpack(string.rep('\161a', 8000)))
return select('#', cmsgpack.unpack_limit(string.rep('\1', 7999), 7999))
return select('#', cmsgpack.unpack_limit(string.rep('\1', 7999), 7998))
return select('#', cmsgpack.unpack(string.rep('\145', 3000) .. '\1'))
return select('#', cmsgpack.unpack(string.rep('\145', 2000) .. '\1'))
return select('#', struct.unpack(string.rep('c1', 7997), string.rep('a', 7997)))
return {cmsgpack.unpack('\147\1\192\3')}
return #cmsgpack.unpack('\147\1\192\3')
return cmsgpack.unpack(cmsgpack.pack({1, 2, nil, 4}))[4]
return cmsgpack.pack({1, 2, nil, 4})
return cmsgpack.pack({[1]=1, [2]=2, [3.5]=3})
return cmsgpack.pack({[2^31]=1})
return cmsgpack.pack({x={y={z={}}}})
return cjson.encode({1, 2, nil, 4})
return cjson.encode({[1]=1, [2]=2, [3.5]=3})
return cjson.encode(cjson.decode('{"a":[1,2,{"b":null}],"c":"\\u20ac"}').a)
return cjson.encode({cjson.null, false, "", {}})
return cjson.decode('[1, 2, 3, 4, 5, 6]')[6]
return cjson.decode('{"a":1,"a":2}').a
return cjson.decode('"\\u0000"')
return cjson.decode('"\\uD834\\uDD1E"')
return cjson.decode('"\\uD834x"')
return cjson.decode('1e')
return cjson.decode('1.')
return cjson.decode('-0')
return cjson.decode('00')
return cjson.decode('[1 2]')
return cjson.decode('{"a":}')
return cjson.decode('{"a":1,}')
return cjson.decode('"\t"')
return cjson.decode('\0')
return cjson.decode('[1,2]\0x')
return cjson.encode(string.rep('x', 40))
return cjson.encode(1e15)
return cjson.encode(123456.789)
return cjson.encode(-1.5e-300)
return cjson.encode(2^63)
return cjson.encode(-2^31)
cjson.encode_number_precision(3) local r = cjson.encode({3.14159, 1234.5, 0.000123}) cjson.encode_number_precision(14) return r
return cjson.encode_sparse_array(1)
return cjson.encode_sparse_array('on', 3, 4)
return {cjson.encode_sparse_array('off', 2, 10)}
return cjson.encode_keep_buffer(5)
return cjson.encode_max_depth('x')
return cjson.encode_max_depth(2^31)
return cjson.decode_max_depth(-1)
return {cjson.encode_max_depth(nil)}
return bit.tohex(-1, 3) .. bit.tohex(0x1234, -3)
return {bit.band(), 1}
return {bit.bor(1.5, 2.5)}
return {bit.arshift(0x80000000, 31), bit.rshift(0x80000000, 31), bit.lshift(1, -1), bit.rol(1, -1)}
return bit.tobit(2^53 + 1)
return {bit.tobit(-2^31), bit.tobit(2^31), bit.tobit(-2^32), bit.tobit(1e300)}
return bit.tobit('  12  ')
return bit.tobit('12x')
return {struct.unpack('>d', struct.pack('>d', 0.1))}
return struct.pack('<!4 h i b d', 1, 2, 3, 4.5)
return struct.size('<!4 h i b d')
return {struct.unpack('<!4 h i b d', struct.pack('<!4 h i b d', 1, 2, 3, 4.5))}
return struct.pack('i0', 5) .. '|'
return {struct.unpack('i0 b', '\7')}
return struct.pack('c', 'xyz')
return struct.pack('!16 b d', 1, 2)
return struct.pack('!', 1)
return struct.pack('!i', 1)
return struct.pack('>i5', -2)
return {struct.unpack('>i5', '\255\255\255\255\254')}
return {struct.unpack('>I5', '\255\255\255\255\254')}
return struct.pack('>T', 2^53 + 2)
return struct.pack('b\0b', 1, 2)
return {struct.unpack('>bb', '\1\2', 1.9)}
return struct.pack('>h', 70000)
return struct.pack('>h', -70000)
return struct.pack('>B', -1)
return struct.pack('>L', 0/0)
