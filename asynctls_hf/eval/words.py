"""Plain English words for haystacks, needle keys and word lists (embedded: nothing is downloaded).

RULER draws these from the `wonderwords` lists; a few hundred common words serve the same purpose here, and
`synthetic_words` makes more distinct ones when a long word list needs them.
"""

from __future__ import annotations

import random

NOUNS = """
able account acid actor advice afternoon agent air airport alarm album anchor angle animal answer apple area
arm army arrow art artist aunt autumn baby back bag bakery ball balloon band bank barn basket bath battery
beach bean bear bed bee bell belt bench bicycle bird blanket boat body bone book boot bottle bowl box brain
branch bread breakfast brick bridge brother brush bucket building bus butter button cabin cable cake camera
camp candle canoe cap car card carpet castle cat cave chain chair chalk cheese cherry chest chicken child
church circle city clock cloud coat coffee coin collar comb cook corn cottage cow crayon crown cup curtain
cushion dance desert desk diamond dinner doctor dog doll door dragon drawer dream dress drum duck eagle ear
earth egg elbow engine envelope eye face family farm feather fence field finger fire fish flag flower flute
fog food foot forest fork fountain fox frog fruit garden gate ghost gift giraffe glass glove goat gold grape
grass guitar hair hammer hand harbor hat heart helmet hill honey horse hospital hotel house ice island jacket
jar jelly jewel juice kettle key king kitchen kite knee knife ladder lake lamp lawyer leaf lemon letter library
lion lizard lock machine magnet map market mask meadow milk mirror monkey moon morning mountain mouse mouth
nail needle nest net night nose notebook ocean office onion orange owl painter palace pan paper parrot party
pearl pencil pepper piano picture pillow pilot pipe planet plate pocket poem pond potato pump puzzle queen
rabbit radio rain river road robot rock roof room rope rose sail salt sand school scissors sea seed shadow
sheep shell ship shirt shoe shop shovel silver singer sister skirt sky snail snake snow soap sock sofa soup
spoon spring square stair star station stone storm stove street sugar suitcase summer sun swan sweater table
tail teacher tent thread throat thumb ticket tiger toast tomato tongue tooth towel tower town toy train tree
truck tunnel turtle umbrella valley vase village violin wagon wall wallet watch water wave whale wheel whistle
window wing winter wire wolf wood wool world yard zebra
""".split()

ADJECTIVES = """
able angry ancient bitter black blue bold brave bright brief broad brown busy calm careful cheap clean clear
clever cold cool crisp cruel curious damp dark dear deep dirty dry dull eager early easy empty fair fancy
fast fierce fine flat fluffy foolish fresh friendly full funny gentle giant glad golden good grand gray
great green happy hard heavy helpful hidden high hollow honest hot huge humble hungry icy jolly kind large
lazy light little lively lonely long loud lucky mighty mild modern narrow neat new nice noisy odd old orange
pale patient pink plain polite poor proud pure purple quick quiet rapid rare red rich rough round royal rude
rusty sad safe salty sharp shiny short shy silent silly simple slim slow small smart smooth soft solid sour
spicy steep sticky strange strict strong sunny sweet swift tall tame tender thick thin tidy tiny tough
tricky ugly warm weak wet white wide wild wise wooden yellow young
""".split()

VERBS = """
accept add admire agree allow answer appear argue arrive ask bake balance bathe beg behave belong bless boil
borrow bounce breathe build burn buy call carry catch change chase check cheer chew clap climb close collect
count cover crawl cross cry dance decide deliver depend describe dig divide drag draw dream drink drive drop
dust earn eat enjoy enter escape explain fetch fill find fix float fold follow forget gather glow grab greet
grow guard guess hang help hide hold hope hug hunt hurry invite join juggle jump kick kneel knit knock laugh
learn lift listen live look love march marry measure melt mend move nod notice obey offer open order pack
paint pass pay pick plan plant play point polish pour pray print pull push race rain reach read relax remember
repair reply rescue return ride ring roll rub run rush sail save scrub search sew shake share shout sing sit
skip sleep slide smell smile sneeze solve speak spell spill stand start stay steer stir stop study swim talk
taste teach tease thank think throw tickle touch trace trade travel trust try turn type visit wait walk wander
want warn wash watch wave weigh whisper win wink wish work worry write yawn yell
""".split()


def word_list(seed: int | str) -> list[str]:
    """Every distinct noun, adjective and verb, shuffled by `seed`."""
    words = sorted(set(NOUNS) | set(ADJECTIVES) | set(VERBS))
    random.Random(seed).shuffle(words)
    return words


def synthetic_words(count: int, rng: random.Random, exclude: set[str] = frozenset()) -> list[str]:
    """`count` distinct pronounceable made-up words (consonant-vowel syllables), none of them in `exclude`."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    seen = set(exclude)
    while len(words) < count:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words
