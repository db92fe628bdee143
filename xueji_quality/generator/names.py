"""Name tables for sample rosters: surname and given-name frequencies, homophones, minority names.

Chinese surnames follow a steep, Zipf-like distribution (王 李 张 刘 陈 cover about 30 % of the
population), and given names are drawn from a few hundred characters, so common full names such
as 张伟 and 王芳 recur many times in a province. The shares below are rounded census figures
(percent of the population); they only need to make names repeat the way they do in real rosters.

Homophones are characters read with the same pinyin and tone (伟 玮 炜): a clerk typing a name from
a spoken form picks any of them, which makes them the usual near-duplicate of a name.
"""

from __future__ import annotations

SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.8),
    ("刘", 5.4),
    ("陈", 4.5),
    ("杨", 3.1),
    ("黄", 2.3),
    ("赵", 2.2),
    ("吴", 2.1),
    ("周", 2.0),
    ("徐", 1.6),
    ("孙", 1.5),
    ("马", 1.5),
    ("朱", 1.3),
    ("胡", 1.3),
    ("郭", 1.2),
    ("何", 1.2),
    ("林", 1.1),
    ("高", 1.1),
    ("罗", 1.0),
    ("郑", 1.0),
    ("梁", 0.9),
    ("谢", 0.8),
    ("宋", 0.8),
    ("唐", 0.8),
    ("许", 0.7),
    ("韩", 0.7),
    ("冯", 0.7),
    ("邓", 0.7),
    ("曹", 0.6),
    ("彭", 0.6),
    ("曾", 0.6),
    ("肖", 0.6),
    ("田", 0.5),
    ("董", 0.5),
    ("袁", 0.5),
    ("潘", 0.5),
    ("于", 0.5),
    ("蒋", 0.5),
    ("蔡", 0.5),
    ("余", 0.5),
    ("杜", 0.4),
    ("叶", 0.4),
    ("程", 0.4),
    ("苏", 0.4),
    ("魏", 0.4),
    ("吕", 0.4),
    ("丁", 0.4),
    ("任", 0.4),
    ("沈", 0.4),
    ("姚", 0.3),
    ("卢", 0.3),
    ("姜", 0.3),
    ("崔", 0.3),
    ("钟", 0.3),
    ("谭", 0.3),
    ("陆", 0.3),
    ("汪", 0.3),
    ("范", 0.3),
    ("金", 0.3),
    ("石", 0.3),
    ("廖", 0.3),
    ("贾", 0.3),
    ("夏", 0.2),
    ("韦", 0.2),
    ("付", 0.2),
    ("方", 0.2),
    ("白", 0.2),
    ("邹", 0.2),
    ("孟", 0.2),
    ("熊", 0.2),
    ("秦", 0.2),
    ("邱", 0.2),
    ("江", 0.2),
    ("尹", 0.2),
    ("薛", 0.2),
    ("闫", 0.2),
    ("段", 0.2),
    ("雷", 0.2),
    ("侯", 0.2),
    ("龙", 0.2),
    ("史", 0.2),
    ("陶", 0.1),
    ("黎", 0.1),
    ("贺", 0.1),
    ("顾", 0.1),
    ("毛", 0.1),
    ("郝", 0.1),
    ("龚", 0.1),
    ("邵", 0.1),
    ("万", 0.1),
    ("钱", 0.1),
    ("覃", 0.1),
    ("单", 0.05),
    ("区", 0.05),
    ("欧阳", 0.05),
    ("司马", 0.01),
    ("诸葛", 0.01),
)

# Given-name characters, most frequent first (a Zipf weight is put on the order).
BOY_CHARS = (
    "子浩宇轩俊杰博文然睿泽涛明伟强磊鹏晨辰宸豪峰凯翔哲瑞航彬鑫诚嘉佳思一志天家建国平军勇毅阳洋"
    "斌超健飞龙乐铭奕逸锐晓小梓皓昊宏海林成振旭安东亮达正永新华彦楷霖煜烨晟坤骏峻琦锦程远康宁"
    "启元承钧卓然秋实德仁义礼智信俊朗展鸿飞云帆景行知恒书墨言川弘毅"
)
GIRL_CHARS = (
    "子欣怡涵萱雨梓诗佳思琪雅婷静芳丽娜敏颖悦彤妍语嘉可馨晴琳婧瑶蕾洁慧蕊紫一诺晓小雪月露萌甜艺"
    "若宁安心依菲薇玲燕红霞秀英桂兰美倩茜媛雯梦婉清琦璐瑾瑜玥希晗昕怡然沁舒乐彦歆菡芷茹蓉莹"
    "楠冰凌霜岚韵采薇曼青禾锦秋之宜"
)

# Whole given names that are much more frequent than their characters suggest.
BOY_POPULAR = (
    "伟",
    "磊",
    "浩然",
    "子轩",
    "宇轩",
    "浩宇",
    "俊杰",
    "杰",
    "强",
    "涛",
    "明",
    "鹏",
    "博文",
    "梓轩",
    "一鸣",
    "宇航",
    "晨",
    "睿",
    "子豪",
    "天佑",
)
GIRL_POPULAR = (
    "芳",
    "娜",
    "静",
    "敏",
    "丽",
    "欣怡",
    "梓涵",
    "子涵",
    "诗涵",
    "雨涵",
    "一诺",
    "梓萱",
    "婷",
    "颖",
    "可馨",
    "语桐",
    "思琪",
    "佳怡",
    "雨欣",
    "晓萱",
)

# Full names that two different students often share (used for same-name-and-birth pairs).
COMMON_FULL_NAMES: dict[str, tuple[str, ...]] = {
    "1": ("张伟", "王伟", "李伟", "刘洋", "王磊", "张磊", "李强", "王浩", "陈杰", "张涛"),
    "2": ("王芳", "李娜", "张敏", "李静", "王静", "刘丽", "张丽", "陈静", "王婷", "张颖"),
}

# Given names of guardians (born 1970s-1990s): older fashions.
GUARDIAN_GIVEN = (
    "建国",
    "建华",
    "国强",
    "志强",
    "海涛",
    "伟",
    "勇",
    "军",
    "斌",
    "涛",
    "明",
    "强",
    "华",
    "平",
    "刚",
    "辉",
    "峰",
    "波",
    "磊",
    "鹏",
    "丽",
    "芳",
    "秀英",
    "桂英",
    "红",
    "霞",
    "燕",
    "玲",
    "丽华",
    "秀兰",
    "春梅",
    "海燕",
    "晓燕",
    "艳",
    "娟",
    "敏",
    "静",
    "婷",
    "慧",
    "小红",
)

_HOMOPHONE_GROUPS = (
    "伟玮炜苇",
    "静婧靖",
    "杰洁婕",
    "涵含寒",
    "轩萱宣",
    "怡仪宜",
    "欣心新馨",
    "宇雨羽语",
    "浩昊灏",
    "然燃",
    "梓紫",
    "涛滔韬",
    "婷亭庭",
    "佳嘉",
    "晨辰宸",
    "俊骏峻",
    "琳林霖",
    "明鸣铭",
    "晓筱",
    "瑞睿锐",
    "敏闵",
    "博搏",
    "颖影",
    "琪琦淇",
    "鹏朋",
    "磊蕾",
    "峰锋丰",
    "哲喆",
)

# Character -> characters with the same pinyin and tone.
HOMOPHONES: dict[str, str] = {
    char: group.replace(char, "") for group in _HOMOPHONE_GROUPS for char in group
}

# Names written with the middle dot (Uyghur given name · father's name), with sex and ethnicity.
DOT_NAMES: tuple[tuple[str, str, str], ...] = (
    ("艾力·买买提", "1", "05"),
    ("麦麦提·艾则孜", "1", "05"),
    ("阿卜杜·热合曼", "1", "05"),
    ("迪丽娜尔·阿不都", "2", "05"),
    ("阿依古丽·吐尔逊", "2", "05"),
    ("热依拉·买买提", "2", "05"),
)

# GB 3304 codes -> names, for the nationalities the sample uses, with their shares (percent).
ETHNICITIES: tuple[tuple[str, str, float], ...] = (
    ("01", "汉族", 97.0),
    ("08", "壮族", 1.0),
    ("13", "瑶族", 0.5),
    ("15", "土家族", 0.5),
    ("06", "苗族", 0.4),
    ("22", "畲族", 0.2),
    ("03", "回族", 0.2),
    ("11", "满族", 0.2),
)
ETHNICITY_NAMES: dict[str, str] = {code: name for code, name, _ in ETHNICITIES} | {"05": "维吾尔族"}

# Words that make primary school names; secondary schools are numbered.
SCHOOL_WORDS = (
    "实验",
    "育才",
    "东风",
    "中心",
    "华侨",
    "新华",
    "人民路",
    "育英",
    "光明",
    "朝阳",
    "青年路",
    "解放路",
    "启明",
    "培英",
    "红星",
    "建设路",
    "城南",
    "城北",
    "文昌",
    "东湖",
)
